-- Applying a subscription's state without the statements that cannot change anything
-- (issue 23). Most states of a subscription find no scheduled downgrade on it, no plan row
-- of another plan (no upgrade or downgrade happened) and no attach that follows it; each of
-- those checks was a statement of its own, run on every event (an executor start and end
-- each, most of their cost). The guard's statement now also tells whether such rows exist,
-- and the statements that look for them run only when they do. The rules themselves are
-- migration 28's, unchanged: a statement is skipped only when the rows it would touch do not
-- exist (the statements before it only ever end rows, never make them).

DROP FUNCTION apply_subscription_state(
    text, bigint, text, text, boolean, text, boolean, text, text, timestamptz, timestamptz,
    boolean, timestamptz, timestamptz, timestamptz, timestamptz, integer, timestamptz, bigint,
    timestamptz);

-- As in migration 28; `p_other_plans` false: the subscription has no live row of another plan
-- (no upgrade to end); `p_scheduled` false: it has no scheduled row (none to end with it).
-- Their defaults keep every statement (store::subscription_sync's scheduled path).
CREATE FUNCTION apply_subscription_state(
    p_id text, p_customer_pk bigint, p_plan_id text, p_group text, p_add_on boolean,
    p_default_id text, p_default_add_on boolean, p_stripe_status text, p_status text,
    p_period_start timestamptz, p_period_end timestamptz, p_cancel_at_period_end boolean,
    p_cancel_at timestamptz, p_canceled_at timestamptz, p_started_at timestamptz,
    p_ended_at timestamptz, p_quantity integer, p_trial_end timestamptz,
    p_event_created bigint, p_changed_at timestamptz,
    p_other_plans boolean DEFAULT true, p_scheduled boolean DEFAULT true,
    OUT held_plan text[], OUT held_status text[], OUT held_backed boolean[],
    OUT held_period_end timestamptz[], OUT held_started_at timestamptz[],
    OUT held_quantity integer[])
LANGUAGE plpgsql AS $$
DECLARE
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    v_row bigint;
BEGIN
    IF p_other_plans THEN
        -- A plan change within the subscription (upgrade or downgrade): the old plan ends.
        UPDATE customer_plans SET status = 'expired', ended_at = coalesce(ended_at, p_changed_at),
               updated_at = now()
        WHERE stripe_subscription_id = p_id AND plan_id <> p_plan_id
          AND status NOT IN ('expired', 'scheduled');
    END IF;
    IF p_status = 'expired' AND p_scheduled THEN
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

-- As in migration 28 (same parameters and answer); the guard's statement also says which
-- of the subscription's other rows exist.
CREATE OR REPLACE FUNCTION sync_subscription_state(
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
    -- What exists of the subscription besides its state (as of before this statement).
    v_scheduled_rows boolean;
    v_other_plans boolean;
    v_attached boolean;
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
                     AND source_digest IS DISTINCT FROM p_digest),
           EXISTS (SELECT 1 FROM customer_plans
                   WHERE stripe_subscription_id = p_id AND status = 'scheduled'),
           EXISTS (SELECT 1 FROM customer_plans
                   WHERE stripe_subscription_id = p_id AND plan_id <> p_plan_id
                     AND status NOT IN ('expired', 'scheduled')),
           EXISTS (SELECT 1 FROM attaches WHERE stripe_subscription_id = p_id)
    INTO v_newer, v_tied, v_scheduled_rows, v_other_plans, v_attached;
    tied := v_tied;

    IF v_newer IS NULL THEN
        verdict := CASE WHEN v_tied AND p_defer THEN 'tied' ELSE 'stale' END;
    ELSE
        verdict := CASE WHEN v_tied THEN 'applied_over_tie' ELSE 'applied' END;
        IF v_scheduled_rows THEN
            -- A downgrade scheduled on this subscription bills its new price from the
            -- moment it is made: a newer state billing another plan means it was dropped.
            UPDATE customer_plans SET status = 'expired', ended_at = p_changed_at,
                   updated_at = now()
            WHERE stripe_subscription_id = p_id AND plan_id <> p_plan_id
              AND status = 'scheduled';
            SELECT started_at INTO v_scheduled FROM customer_plans
            WHERE stripe_subscription_id = p_id AND plan_id = p_plan_id
              AND status = 'scheduled';
            IF FOUND AND (p_period_start IS NULL OR p_period_start < v_scheduled) THEN
                verdict := 'scheduled';
            END IF;
        END IF;
    END IF;

    IF verdict IN ('applied', 'applied_over_tie') THEN
        SELECT a.* INTO held_plan, held_status, held_backed, held_period_end, held_started_at,
                        held_quantity
        FROM apply_subscription_state(
            p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_default_id, p_default_add_on,
            p_stripe_status, p_status, p_period_start, p_period_end, p_cancel_at_period_end,
            p_cancel_at, p_canceled_at, p_started_at, p_ended_at, p_quantity, p_trial_end,
            p_event_created, p_changed_at, v_other_plans, v_scheduled_rows) a;
    END IF;

    -- What the applier does whatever the verdict, when an attach follows the subscription:
    -- a trial's end on its attach, and an attach waiting on the first payment follows the
    -- subscription's newest status.
    IF v_attached THEN
        IF p_trial_end IS NOT NULL THEN
            UPDATE attaches SET trial_end = p_trial_end
            WHERE stripe_subscription_id = p_id AND trial_days IS NOT NULL
              AND trial_end IS DISTINCT FROM p_trial_end;
        END IF;
        PERFORM follow_subscription(p_id);
    END IF;
END
$$;
