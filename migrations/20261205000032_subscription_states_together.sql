-- Applying many subscriptions' states in one call, with a statement for all of them
-- instead of a dozen per state (issue 23). Postgres's time per subscription event was the
-- number of statements it executed (executor start-up and the trigger queue of each), not
-- the rows they wrote; a batch of independent events (no two of one customer) is now
-- written set-based: one guard statement, one plan-row update and one insert, one settle
-- of the groups, one default-plan statement, one read of the held plans.
--
-- Only the common case comes here: each state is newer than the subscription's stored one
-- (no same-second tie to weigh), and the subscription has no scheduled row, no live row of
-- another plan and no attach that follows it (the daemon read all of that in the same
-- transaction, `store::subscription_sync::preflight`). The rules are migration 28's and 30's
-- for that case, statement for statement (apply_subscription_state with `p_other_plans` and
-- `p_scheduled` false, settle_group, activate_default_plan); any other state takes
-- sync_subscription_state, one at a time. If the guard finds a state that is not newer after
-- all (a concurrent write since the read), the call fails and the worker applies the batch
-- again one event at a time.
--
-- The timeline: the plan rows' trigger names each change's source. One transaction used to
-- name one source at a time ('reconciler.source'); the states here come from many events, so
-- the call names each customer's (`reconciler.sources`, {customer_pk: [source, created]}) for
-- its statements and clears it before it answers.

CREATE FUNCTION activity_source_of(p_customer_pk bigint) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(nullif(current_setting('reconciler.sources', true), '')::jsonb
                        -> p_customer_pk::text ->> 0,
                    activity_source())
$$;

CREATE FUNCTION activity_at_of(p_customer_pk bigint) RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce(to_timestamp((nullif(current_setting('reconciler.sources', true), '')::jsonb
                                      -> p_customer_pk::text ->> 1)::double precision),
                    activity_at())
$$;

-- Migration 28's trigger, the source and time read for the row's customer.
CREATE OR REPLACE FUNCTION record_plan_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- The statuses that hold a group's place: access::HELD_SQL.
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    held_new boolean := NEW.status = ANY (held_statuses);
    held_old boolean := TG_OP = 'UPDATE' AND OLD.status = ANY (held_statuses);
    canceling_new boolean := NEW.cancel_at_period_end OR NEW.cancel_at IS NOT NULL;
    canceling_old boolean := TG_OP = 'UPDATE' AND (OLD.cancel_at_period_end OR OLD.cancel_at IS NOT NULL);
    kinds text[] := '{}';
    extra jsonb := '{}';
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
        extra := extra || jsonb_build_object('from', OLD.status);
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
        extra := extra || jsonb_build_object('from', OLD.quantity);
    END IF;
    IF cardinality(kinds) = 0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    SELECT NEW.customer_pk, k, activity_at_of(NEW.customer_pk), activity_source_of(NEW.customer_pk),
           jsonb_strip_nulls(jsonb_build_object(
               'plan_id', NEW.plan_id, 'status', NEW.status,
               'subscription_id', NEW.stripe_subscription_id, 'quantity', NEW.quantity,
               'cancel_at', coalesce(NEW.cancel_at,
                                     CASE WHEN NEW.cancel_at_period_end THEN NEW.current_period_end END),
               'period_end', NEW.current_period_end)) || extra
    FROM unnest(kinds) AS k;
    RETURN NULL;
END
$$;

-- The states, one per array position, bound as sync_subscription_state's parameters are
-- (`p_customer_pk`: whom the state is kept under; no two alike, nor two of one subscription),
-- with each state's source (an event id). Answers each customer's held plans (as
-- apply_subscription_state does; none for a customer who holds none).
CREATE FUNCTION apply_subscription_states(
    p_id text[], p_customer_pk bigint[], p_plan_id text[], p_group text[], p_add_on boolean[],
    p_default_id text[], p_default_add_on boolean[], p_stripe_status text[], p_status text[],
    p_period_start timestamptz[], p_period_end timestamptz[], p_cancel_at_period_end boolean[],
    p_cancel_at timestamptz[], p_canceled_at timestamptz[], p_started_at timestamptz[],
    p_ended_at timestamptz[], p_quantity integer[], p_trial_end timestamptz[],
    p_event_created bigint[], p_changed_at timestamptz[], p_rank integer[], p_digest text[],
    p_source text[])
RETURNS TABLE (customer_pk bigint, held_plan text[], held_status text[], held_backed boolean[],
               held_period_end timestamptz[], held_started_at timestamptz[],
               held_quantity integer[])
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    v_moved integer;
BEGIN
    PERFORM set_config('reconciler.sources',
        (SELECT jsonb_object_agg(c::text, jsonb_build_array(s, e))
         FROM unnest(p_customer_pk, p_source, p_event_created) AS u (c, s, e))::text, true);

    -- The guard: each state is newer than its subscription's stored one, so each moves it.
    WITH moved AS (
        INSERT INTO stripe_subscriptions AS g
            (id, customer_pk, plan_id, status, source_created, source_rank, source_digest,
             source_read)
        SELECT u.*, false
        FROM unnest(p_id, p_customer_pk, p_plan_id, p_stripe_status, p_event_created, p_rank,
                    p_digest) AS u
        ON CONFLICT (id) DO UPDATE
            SET plan_id = EXCLUDED.plan_id, status = EXCLUDED.status,
                source_created = EXCLUDED.source_created, source_rank = EXCLUDED.source_rank,
                source_digest = EXCLUDED.source_digest, source_read = EXCLUDED.source_read
            WHERE g.source_created < EXCLUDED.source_created
        RETURNING 1)
    SELECT count(*) INTO v_moved FROM moved;
    IF v_moved <> cardinality(p_id) THEN
        RAISE EXCEPTION 'apply_subscription_states: % of % states were not newer than the stored ones',
            cardinality(p_id) - v_moved, cardinality(p_id)
            USING ERRCODE = 'serialization_failure';
    END IF;

    -- The plan rows (apply_subscription_state's upsert, as an update and an insert).
    UPDATE customer_plans cp
    SET status = i.status,
        current_period_start = coalesce(i.period_start, cp.current_period_start),
        current_period_end = coalesce(i.period_end, cp.current_period_end),
        cancel_at_period_end = i.cancel_at_period_end,
        canceled_at = i.canceled_at,
        -- a downgrade that waited keeps the start it was scheduled for
        started_at = CASE WHEN cp.status = 'scheduled' THEN cp.started_at
                          ELSE coalesce(i.started_at, cp.started_at) END,
        ended_at = CASE WHEN i.status = 'expired' THEN i.changed_at ELSE i.ended_at END,
        quantity = i.quantity,
        cancel_at = i.cancel_at,
        trial_end = i.trial_end,
        first_seen = least(cp.first_seen, i.event_created),
        last_seen = greatest(cp.last_seen, i.event_created),
        updated_at = now()
    FROM unnest(p_id, p_plan_id, p_status, p_period_start, p_period_end,
                p_cancel_at_period_end, p_canceled_at, p_started_at, p_ended_at, p_quantity,
                p_cancel_at, p_trial_end, p_event_created, p_changed_at)
         AS i (id, plan_id, status, period_start, period_end, cancel_at_period_end,
               canceled_at, started_at, ended_at, quantity, cancel_at, trial_end,
               event_created, changed_at)
    WHERE cp.stripe_subscription_id = i.id AND cp.plan_id = i.plan_id;

    INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
            stripe_subscription_id, current_period_start, current_period_end,
            cancel_at_period_end, canceled_at, started_at, ended_at, quantity, cancel_at,
            first_seen, last_seen, trial_end)
    SELECT i.customer_pk, i.plan_id, i.grp, i.add_on, i.status, i.id, i.period_start,
           i.period_end, i.cancel_at_period_end, i.canceled_at, coalesce(i.started_at, now()),
           CASE WHEN i.status = 'expired' THEN i.changed_at ELSE i.ended_at END,
           i.quantity, i.cancel_at, i.event_created, i.event_created, i.trial_end
    FROM unnest(p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_status, p_period_start,
                p_period_end, p_cancel_at_period_end, p_canceled_at, p_started_at, p_ended_at,
                p_quantity, p_cancel_at, p_event_created, p_trial_end, p_changed_at)
         AS i (id, customer_pk, plan_id, grp, add_on, status, period_start, period_end,
               cancel_at_period_end, canceled_at, started_at, ended_at, quantity, cancel_at,
               event_created, trial_end, changed_at)
    WHERE NOT EXISTS (SELECT 1 FROM customer_plans cp
                      WHERE cp.stripe_subscription_id = i.id AND cp.plan_id = i.plan_id);

    -- settle_group's first statement for each plan that is held now: its group's rivals
    -- end, and a plan without a subscription that ended later had ended by then.
    WITH winner AS (
        SELECT w.id, i.customer_pk, i.grp, i.changed_at AS at
        FROM unnest(p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_changed_at)
             AS i (id, customer_pk, plan_id, grp, add_on, changed_at)
        JOIN customer_plans w ON w.stripe_subscription_id = i.id AND w.plan_id = i.plan_id
        WHERE i.grp IS NOT NULL AND NOT i.add_on AND w.status = ANY (held_statuses)
    ), rivals AS (
        UPDATE customer_plans c SET status = 'expired', ended_at = winner.at, updated_at = now()
        FROM winner
        WHERE c.customer_pk = winner.customer_pk AND c.plan_group = winner.grp AND NOT c.add_on
          AND c.id <> winner.id AND c.status = ANY (held_statuses))
    UPDATE customer_plans c SET ended_at = winner.at, updated_at = now()
    FROM winner
    WHERE c.customer_pk = winner.customer_pk AND c.plan_group = winner.grp AND NOT c.add_on
      AND c.stripe_subscription_id IS NULL AND c.status = 'expired'
      AND c.ended_at > winner.at AND c.started_at <= winner.at;

    -- settle_group's second: a group left with no held plan but its default (and not an
    -- entity's holder) gets the default plan back (activate_default_plan).
    WITH d AS (
        SELECT i.customer_pk, i.default_id, i.grp, i.default_add_on, i.changed_at AS at,
               i.stripe_status = 'canceled' AS restart
        FROM unnest(p_customer_pk, p_default_id, p_group, p_add_on, p_default_add_on,
                    p_changed_at, p_stripe_status)
             AS i (customer_pk, default_id, grp, add_on, default_add_on, changed_at,
                   stripe_status)
        WHERE i.grp IS NOT NULL AND NOT i.add_on AND i.default_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM customer_plans c
                          WHERE c.customer_pk = i.customer_pk AND c.plan_group = i.grp
                            AND NOT c.add_on AND c.status = ANY (held_statuses)
                            AND NOT (c.plan_id = i.default_id AND c.stripe_subscription_id IS NULL))
          AND NOT EXISTS (SELECT 1 FROM customers
                          WHERE pk = i.customer_pk AND parent_pk IS NOT NULL)
    ), restarted AS (
        UPDATE customer_plans c SET status = 'active', ended_at = NULL, updated_at = now(),
            started_at = CASE WHEN c.status <> 'active' AND c.ended_at > d.at
                              THEN c.started_at ELSE d.at END
        FROM d
        WHERE c.customer_pk = d.customer_pk AND c.plan_id = d.default_id
          AND c.stripe_subscription_id IS NULL
          AND (c.status <> 'active' OR (d.restart AND c.started_at < d.at)))
    INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status, started_at)
    SELECT d.customer_pk, d.default_id, d.grp, d.default_add_on, 'active', d.at FROM d
    WHERE NOT EXISTS (SELECT 1 FROM customer_plans c
                      WHERE c.customer_pk = d.customer_pk AND c.plan_id = d.default_id
                        AND c.stripe_subscription_id IS NULL);

    PERFORM set_config('reconciler.sources', '', true);

    -- What balances are provisioned from (balances::provision's read), per customer.
    RETURN QUERY
    SELECT c.customer_pk, array_agg(c.plan_id ORDER BY c.add_on, c.id),
           array_agg(c.status ORDER BY c.add_on, c.id),
           array_agg(c.stripe_subscription_id IS NOT NULL ORDER BY c.add_on, c.id),
           array_agg(c.current_period_end ORDER BY c.add_on, c.id),
           array_agg(c.started_at ORDER BY c.add_on, c.id),
           array_agg(c.quantity ORDER BY c.add_on, c.id)
    FROM customer_plans c
    WHERE c.customer_pk = ANY (p_customer_pk) AND c.status = ANY (held_statuses)
    GROUP BY c.customer_pk;
END
$$;
