-- The customer's timeline (GET /v1/customers/{id}/timeline, issue 15): what happened to a
-- customer, newest first. Plan rows record their own
-- changes (a trigger, so every path that changes a plan is seen: webhooks, attaches, jobs,
-- reconcile); the source is what the writing transaction said it is (set_config
-- 'reconciler.source': a Stripe event id, `api`, `cli`, a job), else 'system'.
CREATE TABLE activity (
    id           bigserial PRIMARY KEY,
    customer_pk  bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    kind         text NOT NULL,
    at           timestamptz NOT NULL,
    source       text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX activity_customer_idx ON activity (customer_pk, at DESC, id DESC);

CREATE FUNCTION activity_source() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('reconciler.source', true), ''), 'system')
$$;

CREATE FUNCTION activity_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(to_timestamp(nullif(current_setting('reconciler.at', true), '')::double precision),
                    now())
$$;

CREATE FUNCTION record_plan_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The statuses that hold a group's place: access::HELD_SQL.
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    held_new boolean := NEW.status = ANY (held_statuses);
    held_old boolean := TG_OP = 'UPDATE' AND OLD.status = ANY (held_statuses);
    canceling_new boolean := NEW.cancel_at_period_end OR NEW.cancel_at IS NOT NULL;
    canceling_old boolean := TG_OP = 'UPDATE' AND (OLD.cancel_at_period_end OR OLD.cancel_at IS NOT NULL);
    detail jsonb := jsonb_strip_nulls(jsonb_build_object(
        'plan_id', NEW.plan_id, 'status', NEW.status,
        'subscription_id', NEW.stripe_subscription_id, 'quantity', NEW.quantity,
        'cancel_at', coalesce(NEW.cancel_at,
                              CASE WHEN NEW.cancel_at_period_end THEN NEW.current_period_end END),
        'period_end', NEW.current_period_end));
    kinds text[] := '{}';
BEGIN
    IF held_new AND NOT held_old THEN
        kinds := kinds || 'plan.attached'::text;
    ELSIF NEW.status = 'scheduled' AND (TG_OP = 'INSERT' OR OLD.status <> 'scheduled') THEN
        kinds := kinds || 'plan.scheduled'::text;
    ELSIF TG_OP = 'UPDATE' AND NEW.status IN ('expired', 'canceled')
          AND OLD.status NOT IN ('expired', 'canceled') THEN
        kinds := kinds || 'plan.expired'::text;
    ELSIF held_new AND held_old AND NEW.status <> OLD.status THEN
        kinds := kinds || 'plan.status'::text;
        detail := detail || jsonb_build_object('from', OLD.status);
    END IF;
    IF held_new AND canceling_new AND NOT canceling_old THEN
        kinds := kinds || 'plan.canceled'::text;
    ELSIF held_new AND held_old AND canceling_old AND NOT canceling_new THEN
        kinds := kinds || 'plan.uncanceled'::text;
    END IF;
    IF held_new AND held_old AND NEW.current_period_start > OLD.current_period_start THEN
        kinds := kinds || 'plan.renewed'::text;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.quantity <> OLD.quantity THEN
        kinds := kinds || 'plan.quantity'::text;
        detail := detail || jsonb_build_object('from', OLD.quantity);
    END IF;
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    SELECT NEW.customer_pk, k, activity_at(), activity_source(), detail FROM unnest(kinds) AS k;
    RETURN NULL;
END
$$;

CREATE TRIGGER customer_plans_activity AFTER INSERT OR UPDATE ON customer_plans
    FOR EACH ROW EXECUTE FUNCTION record_plan_activity();

CREATE FUNCTION record_balance_edit_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    VALUES (NEW.customer_pk, 'balance.' || NEW.op, NEW.created_at, NEW.actor,
            jsonb_strip_nulls(jsonb_build_object(
                'feature_id', NEW.feature_id, 'amount', NEW.amount, 'reason', NEW.reason,
                'balance', NEW.balance_after, 'who', NEW.actor)));
    RETURN NULL;
END
$$;

CREATE TRIGGER balance_edits_activity AFTER INSERT ON balance_edits
    FOR EACH ROW EXECUTE FUNCTION record_balance_edit_activity();
