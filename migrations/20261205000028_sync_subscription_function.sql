-- Applying a subscription's state in one round trip (issue 23): what `store::plans::
-- sync_subscription` did in up to ten statements from the daemon, each a round trip, runs
-- here as one call. The rules are the ones written there (version guard with ties, a
-- scheduled downgrade dropped or waiting, the old plan of an upgrade ended, one held plan
-- per group, the default plan back when the group has none), plus what the applier did
-- after them (a trial's end on its attach, an attach waiting on the first payment
-- following the subscription). It answers with the customer's held plans, which balances
-- are provisioned from (the catalog's features live in the daemon).
--
-- Verdicts: 'applied', 'applied_over_tie', 'tied' and 'stale' as `plans::Sync`; 'scheduled':
-- the state's plan is a downgrade waiting for its period, the guard has moved and the
-- daemon goes on from there (the rare path keeps its statements in Rust).
--
-- The held statuses are access::HELD_SQL's, as in record_plan_activity().

-- An attach waiting on the first payment (attaches::WAITING) follows its subscription's
-- newest status: paid or live, done; ended unpaid, expired.
CREATE FUNCTION follow_subscription(p_id text) RETURNS void LANGUAGE plpgsql AS $$
-- plpgsql, not sql: a SQL function that is not inlined plans its body on every call
-- (~0.2 ms); plpgsql keeps the plan for the session.
BEGIN
    UPDATE attaches a SET updated_at = now(), action_url = NULL,
        state = CASE
            WHEN s.status IN ('incomplete_expired', 'canceled') THEN 'expired'
            WHEN a.checkout_session_id IS NULL THEN 'active' ELSE 'completed' END,
        error = CASE
            WHEN s.status IN ('incomplete_expired', 'canceled')
            THEN coalesce(a.error || '; ', '')
                 || 'the subscription ended before its first payment (' || s.status || ')'
            END
    FROM stripe_subscriptions s
    WHERE s.id = p_id AND a.stripe_subscription_id = p_id
      AND a.state IN ('awaiting_payment', 'requires_action') -- attaches::WAITING
      AND s.status IS NOT NULL AND s.status <> 'incomplete';
END
$$;

-- (Re)activates a plan that needs no Stripe subscription (a default plan), from `p_at`. An
-- ended one restarts at `p_at`, unless it ended after `p_at`: then it was never replaced as of
-- `p_at` (a newer event ended it first) and keeps its start. With `p_restart`, a live one
-- restarts at `p_at` if that is later: a plan of its group ended then, which in another
-- delivery order replaced it first. (store::plans::activate_default calls it too.)
CREATE FUNCTION activate_default_plan(
    p_customer_pk bigint, p_plan_id text, p_group text, p_add_on boolean, p_at timestamptz,
    p_restart boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status, started_at)
    VALUES (p_customer_pk, p_plan_id, p_group, p_add_on, 'active', p_at)
    ON CONFLICT (customer_pk, plan_id) WHERE stripe_subscription_id IS NULL
    DO UPDATE SET status = 'active', ended_at = NULL, updated_at = now(),
        started_at = CASE
            WHEN customer_plans.status <> 'active'
                 AND customer_plans.ended_at > EXCLUDED.started_at
            THEN customer_plans.started_at
            ELSE EXCLUDED.started_at END
    WHERE customer_plans.status <> 'active'
       OR (p_restart AND customer_plans.started_at < EXCLUDED.started_at);
END
$$;

-- One held plan per group: a plan that just became held (`p_winner`: live or suspended)
-- replaces the others of its group (add-ons stand apart; an `incomplete` one replaces
-- nothing), and a plan of the group without a subscription that ended later had ended by
-- `p_at`. When the group is left with no held plan but its default (`p_default_id`), the
-- default plan (re)starts at `p_at`; an entity's holder has no default plans.
-- (store::plans::settle_group calls it too.)
CREATE FUNCTION settle_group(
    p_customer_pk bigint, p_group text, p_winner bigint, p_at timestamptz, p_default_id text,
    p_default_add_on boolean, p_restart boolean) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
BEGIN
    IF p_winner IS NOT NULL THEN
        -- The rivals end at `p_at`; a local plan that ended later ended by then (disjoint
        -- rows: held ones, ended ones).
        WITH winner AS (SELECT 1 FROM customer_plans w
                        WHERE w.id = p_winner AND w.status = ANY (held_statuses)),
        rivals AS (
            UPDATE customer_plans SET status = 'expired', ended_at = p_at, updated_at = now()
            WHERE customer_pk = p_customer_pk AND plan_group = p_group AND NOT add_on
              AND id <> p_winner AND status = ANY (held_statuses)
              AND EXISTS (SELECT 1 FROM winner))
        UPDATE customer_plans SET ended_at = p_at, updated_at = now()
        WHERE customer_pk = p_customer_pk AND plan_group = p_group AND NOT add_on
          AND stripe_subscription_id IS NULL AND status = 'expired'
          AND ended_at > p_at AND started_at <= p_at
          AND EXISTS (SELECT 1 FROM winner);
    END IF;
    IF p_default_id IS NOT NULL AND NOT (
        EXISTS (SELECT 1 FROM customer_plans
                WHERE customer_pk = p_customer_pk AND plan_group = p_group AND NOT add_on
                  AND status = ANY (held_statuses)
                  AND NOT (plan_id = p_default_id AND stripe_subscription_id IS NULL))
        OR EXISTS (SELECT 1 FROM customers WHERE pk = p_customer_pk AND parent_pk IS NOT NULL))
    THEN
        PERFORM activate_default_plan(p_customer_pk, p_default_id, p_group, p_default_add_on,
                                      p_at, p_restart);
    END IF;
END
$$;

-- A subscription's state applied to its plans (the guard has let it through): the old plan
-- of an upgrade ends, an ended subscription takes its scheduled downgrade with it, the plan
-- row is written, its group settled; answers with the customer's held plans.
CREATE FUNCTION apply_subscription_state(
    p_id text, p_customer_pk bigint, p_plan_id text, p_group text, p_add_on boolean,
    p_default_id text, p_default_add_on boolean, p_stripe_status text, p_status text,
    p_period_start timestamptz, p_period_end timestamptz, p_cancel_at_period_end boolean,
    p_cancel_at timestamptz, p_canceled_at timestamptz, p_started_at timestamptz,
    p_ended_at timestamptz, p_quantity integer, p_trial_end timestamptz,
    p_event_created bigint, p_changed_at timestamptz,
    OUT held_plan text[], OUT held_status text[], OUT held_backed boolean[],
    OUT held_period_end timestamptz[], OUT held_started_at timestamptz[],
    OUT held_quantity integer[])
LANGUAGE plpgsql AS $$
DECLARE
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    v_row bigint;
BEGIN
    -- A plan change within the subscription (upgrade or downgrade): the old plan ends.
    UPDATE customer_plans SET status = 'expired', ended_at = coalesce(ended_at, p_changed_at),
           updated_at = now()
    WHERE stripe_subscription_id = p_id AND plan_id <> p_plan_id
      AND status NOT IN ('expired', 'scheduled');
    IF p_status = 'expired' THEN
        -- A subscription that ended takes its scheduled downgrade with it.
        UPDATE customer_plans SET status = 'expired', ended_at = p_changed_at, updated_at = now()
        WHERE stripe_subscription_id = p_id AND status = 'scheduled';
    END IF;
    INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
            stripe_subscription_id, current_period_start, current_period_end,
            cancel_at_period_end, canceled_at, started_at, ended_at, quantity, cancel_at,
            first_seen, last_seen, trial_end)
    VALUES (p_customer_pk, p_plan_id, p_group, p_add_on, p_status, p_id, p_period_start,
            p_period_end, p_cancel_at_period_end, p_canceled_at, coalesce(p_started_at, now()),
            CASE WHEN p_status = 'expired' THEN p_changed_at ELSE p_ended_at END,
            p_quantity, p_cancel_at, p_event_created, p_event_created, p_trial_end)
    ON CONFLICT (stripe_subscription_id, plan_id) WHERE stripe_subscription_id IS NOT NULL
    DO UPDATE SET status = EXCLUDED.status,
            current_period_start = coalesce(EXCLUDED.current_period_start, customer_plans.current_period_start),
            current_period_end = coalesce(EXCLUDED.current_period_end, customer_plans.current_period_end),
            cancel_at_period_end = EXCLUDED.cancel_at_period_end,
            canceled_at = EXCLUDED.canceled_at,
            -- a downgrade that waited keeps the start it was scheduled for
            started_at = CASE WHEN customer_plans.status = 'scheduled'
                              THEN customer_plans.started_at
                              ELSE coalesce(p_started_at, customer_plans.started_at) END,
            ended_at = EXCLUDED.ended_at,
            quantity = EXCLUDED.quantity,
            cancel_at = EXCLUDED.cancel_at,
            trial_end = EXCLUDED.trial_end,
            first_seen = least(customer_plans.first_seen, p_event_created),
            last_seen = greatest(customer_plans.last_seen, p_event_created),
            updated_at = now()
    RETURNING id INTO v_row;

    -- One held plan per group (settle_group in store/plans.rs): the rivals of a plan that
    -- became held end when it changed, and a plan without a subscription that ended
    -- later had ended by then; with no held plan left, the default plan (re)starts.
    IF p_group IS NOT NULL AND NOT p_add_on THEN
        PERFORM settle_group(p_customer_pk, p_group, v_row, p_changed_at, p_default_id,
                             p_default_add_on, p_stripe_status = 'canceled');
    END IF;

    -- What balances are provisioned from (balances::provision's read).
    SELECT array_agg(plan_id ORDER BY add_on, id), array_agg(status ORDER BY add_on, id),
           array_agg(stripe_subscription_id IS NOT NULL ORDER BY add_on, id),
           array_agg(current_period_end ORDER BY add_on, id),
           array_agg(started_at ORDER BY add_on, id), array_agg(quantity ORDER BY add_on, id)
    INTO held_plan, held_status, held_backed, held_period_end, held_started_at, held_quantity
    FROM customer_plans
    WHERE customer_pk = p_customer_pk AND status = ANY (held_statuses);
END
$$;

-- Its parameters are apply_subscription_state's, then the guard's.
CREATE FUNCTION sync_subscription_state(
    p_id text, p_customer_pk bigint, p_plan_id text, p_group text, p_add_on boolean,
    p_default_id text, p_default_add_on boolean, p_stripe_status text, p_status text,
    p_period_start timestamptz, p_period_end timestamptz, p_cancel_at_period_end boolean,
    p_cancel_at timestamptz, p_canceled_at timestamptz, p_started_at timestamptz,
    p_ended_at timestamptz, p_quantity integer, p_trial_end timestamptz,
    p_event_created bigint, p_changed_at timestamptz,
    p_rank integer, p_digest text, p_defer boolean, p_read boolean,
    OUT verdict text, OUT tied boolean,
    OUT held_plan text[], OUT held_status text[], OUT held_backed boolean[],
    OUT held_period_end timestamptz[], OUT held_started_at timestamptz[],
    OUT held_quantity integer[])
LANGUAGE plpgsql AS $$
DECLARE
    v_newer boolean;
    v_tied boolean;
    v_scheduled timestamptz;
BEGIN
    -- The guard, and whether the state there tied with this one. Within a second, two
    -- events are ordered by status precedence; a read and any state of its second tie.
    WITH before AS (
        SELECT source_created, source_rank, source_digest, source_read
        FROM stripe_subscriptions WHERE id = p_id
    ), up AS (
        INSERT INTO stripe_subscriptions AS g
            (id, customer_pk, plan_id, status, source_created, source_rank, source_digest,
             source_read)
        VALUES (p_id, p_customer_pk, p_plan_id, p_stripe_status, p_event_created, p_rank,
                p_digest, p_read)
        ON CONFLICT (id) DO UPDATE
            SET plan_id = EXCLUDED.plan_id, status = EXCLUDED.status,
                source_created = EXCLUDED.source_created, source_rank = EXCLUDED.source_rank,
                source_digest = EXCLUDED.source_digest, source_read = EXCLUDED.source_read
            WHERE g.source_created < EXCLUDED.source_created
               OR (g.source_created = EXCLUDED.source_created
                   AND NOT g.source_read AND NOT EXCLUDED.source_read
                   AND g.source_rank < EXCLUDED.source_rank)
               OR (g.source_created = EXCLUDED.source_created
                   AND (g.source_read OR EXCLUDED.source_read
                        OR g.source_rank = EXCLUDED.source_rank)
                   AND NOT (p_defer AND g.source_digest IS DISTINCT FROM EXCLUDED.source_digest))
        RETURNING true AS applied
    )
    SELECT (SELECT applied FROM up),
           EXISTS (SELECT 1 FROM before
                   WHERE source_created = p_event_created
                     AND (source_read OR p_read OR source_rank = p_rank)
                     AND source_digest IS DISTINCT FROM p_digest)
    INTO v_newer, v_tied;
    tied := v_tied;

    IF v_newer IS NULL THEN
        verdict := CASE WHEN v_tied AND p_defer THEN 'tied' ELSE 'stale' END;
    ELSE
        -- A downgrade scheduled on this subscription bills its new price from the moment
        -- it is made: a newer state billing another plan means it was dropped.
        UPDATE customer_plans SET status = 'expired', ended_at = p_changed_at, updated_at = now()
        WHERE stripe_subscription_id = p_id AND plan_id <> p_plan_id AND status = 'scheduled';
        SELECT started_at INTO v_scheduled FROM customer_plans
        WHERE stripe_subscription_id = p_id AND plan_id = p_plan_id AND status = 'scheduled';
        IF FOUND AND (p_period_start IS NULL OR p_period_start < v_scheduled) THEN
            verdict := 'scheduled';
        ELSE
            verdict := CASE WHEN v_tied THEN 'applied_over_tie' ELSE 'applied' END;
        END IF;
    END IF;

    IF verdict IN ('applied', 'applied_over_tie') THEN
        SELECT a.* INTO held_plan, held_status, held_backed, held_period_end, held_started_at,
                        held_quantity
        FROM apply_subscription_state(
            p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_default_id, p_default_add_on,
            p_stripe_status, p_status, p_period_start, p_period_end, p_cancel_at_period_end,
            p_cancel_at, p_canceled_at, p_started_at, p_ended_at, p_quantity, p_trial_end,
            p_event_created, p_changed_at) a;
    END IF;

    -- What the applier does whatever the verdict: a trial's end on its attach, and an attach
    -- waiting on the first payment follows the subscription's newest status.
    IF p_trial_end IS NOT NULL THEN
        UPDATE attaches SET trial_end = p_trial_end
        WHERE stripe_subscription_id = p_id AND trial_days IS NOT NULL
          AND trial_end IS DISTINCT FROM p_trial_end;
    END IF;
    PERFORM follow_subscription(p_id);
END
$$;

-- The timeline's plan trigger (migration 17) as it was, except that a change that makes no
-- entry (most writes of a plan row: its period, its `last_seen`, a rival already ended)
-- returns before building the entry's detail.
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
    SELECT NEW.customer_pk, k, activity_at(), activity_source(),
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
