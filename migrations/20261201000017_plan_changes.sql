-- Plan changes an operator asks for (POST /v1/cancel, /v1/uncancel, /v1/quantity, issue 15),
-- carried out by the outbox job `plan.change`, which calls Stripe with the idempotency key
-- `rc-change-{id}` and records what Stripe answered the way webhooks do.
CREATE TABLE plan_changes (
    id               text PRIMARY KEY,
    customer_pk      bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    plan_id          text NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('cancel', 'uncancel', 'quantity')),
    -- cancel: when the plan ends.
    cancel_at        text CHECK (cancel_at IN ('period_end', 'now')),
    -- quantity: the new count, and whether Stripe prorates it.
    quantity         integer CHECK (quantity > 0),
    prorate          boolean NOT NULL DEFAULT true,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
    -- What the change did (`canceled`, `ended`, `uncanceled`, `unscheduled`, `quantity`,
    -- `unchanged`), once done.
    outcome          text,
    error            text,
    stripe_subscription_id text,
    -- Who asked: the API token's label, or `cli`; the timeline's source.
    actor            text NOT NULL,
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'cancel') = (cancel_at IS NOT NULL)),
    CHECK ((kind = 'quantity') = (quantity IS NOT NULL))
);
CREATE UNIQUE INDEX plan_changes_key ON plan_changes (customer_pk, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX plan_changes_customer_idx ON plan_changes (customer_pk, created_at DESC);

-- Within one second Stripe's `created` cannot order two events of a subscription: what the
-- newest applied one said (a digest of the fields we keep) tells a same-second event with
-- other content apart, and such a tie is settled by reading the subscription from Stripe
-- (the `subscription.refresh` job).
ALTER TABLE stripe_subscriptions ADD COLUMN source_digest text;

-- An attach may ask for a quantity (seats) and whether an upgrade prorates.
ALTER TABLE attaches
    ADD COLUMN quantity integer NOT NULL DEFAULT 1 CHECK (quantity > 0),
    ADD COLUMN prorate boolean NOT NULL DEFAULT true;

-- A downgrade that will not start after all (dropped by uncancel, or its subscription ended)
-- is `plan.unscheduled` in the timeline, not an expiry of a plan the customer never had.
CREATE OR REPLACE FUNCTION record_plan_activity() RETURNS trigger LANGUAGE plpgsql AS $$
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
    ELSIF TG_OP = 'UPDATE' AND OLD.status = 'scheduled' AND NEW.status = 'expired' THEN
        kinds := kinds || 'plan.unscheduled'::text;
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
