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
-- transaction, `store::subscription_states::preflight`). The rules are migration 28's and 30's
-- for that case, statement for statement (apply_subscription_state with `p_other_plans` and
-- `p_scheduled` false, settle_group, activate_default_plan); any other state takes
-- sync_subscription_state, one at a time. If the guard finds a state that is not newer after
-- all (a concurrent write since the read), the call fails and the worker applies the batch
-- again one event at a time.
--
-- The timeline: the plan rows' trigger wrote an entry per changed row, a statement each
-- (and its queue entry and call), with the one source a transaction names at a time; a
-- batch's states come from many events. The entries a change makes are now one function,
-- plan_changes(old row, new row), which the trigger calls, and which this call uses to write
-- the entries of all its rows in one statement per write, each with its event as source; the
-- trigger stands aside for those writes ('reconciler.plan_activity' = 'explicit', set only
-- while the call runs).

-- What a plan row's change means for the timeline (migration 28's trigger, as a function):
-- its kinds, in order, and the entry's detail (built only when there are kinds). `o` is NULL
-- for a new row.
CREATE FUNCTION plan_changes(o customer_plans, n customer_plans,
                             OUT kinds text[], OUT detail jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- The statuses that hold a group's place: access::HELD_SQL.
    held_statuses constant text[] := ARRAY['active', 'trialing', 'past_due', 'unpaid', 'paused'];
    is_update boolean := o.id IS NOT NULL;
    held_new boolean := n.status = ANY (held_statuses);
    held_old boolean := is_update AND o.status = ANY (held_statuses);
    canceling_new boolean := n.cancel_at_period_end OR n.cancel_at IS NOT NULL;
    canceling_old boolean := is_update AND (o.cancel_at_period_end OR o.cancel_at IS NOT NULL);
    extra jsonb := '{}';
BEGIN
    kinds := '{}';
    IF held_new AND NOT held_old THEN
        kinds := kinds || 'plan.attached'::text;
    ELSIF n.status = 'scheduled' AND (NOT is_update OR o.status <> 'scheduled') THEN
        kinds := kinds || 'plan.scheduled'::text;
    ELSIF is_update AND o.status = 'scheduled' AND n.status = 'expired' THEN
        kinds := kinds || 'plan.unscheduled'::text;
    ELSIF is_update AND n.status IN ('expired', 'canceled')
          AND o.status NOT IN ('expired', 'canceled') THEN
        kinds := kinds || 'plan.expired'::text;
    ELSIF held_new AND held_old AND n.status <> o.status THEN
        kinds := kinds || 'plan.status'::text;
        extra := extra || jsonb_build_object('from', o.status);
    END IF;
    IF held_new AND canceling_new AND NOT canceling_old THEN
        kinds := kinds || 'plan.canceled'::text;
    ELSIF held_new AND held_old AND canceling_old AND NOT canceling_new THEN
        kinds := kinds || 'plan.uncanceled'::text;
    END IF;
    IF held_new AND held_old AND n.current_period_start > o.current_period_start THEN
        kinds := kinds || 'plan.renewed'::text;
    END IF;
    IF is_update AND n.quantity <> o.quantity THEN
        kinds := kinds || 'plan.quantity'::text;
        extra := extra || jsonb_build_object('from', o.quantity);
    END IF;
    IF cardinality(kinds) > 0 THEN
        detail := jsonb_strip_nulls(jsonb_build_object(
            'plan_id', n.plan_id, 'status', n.status,
            'subscription_id', n.stripe_subscription_id, 'quantity', n.quantity,
            'cancel_at', coalesce(n.cancel_at,
                                  CASE WHEN n.cancel_at_period_end THEN n.current_period_end END),
            'period_end', n.current_period_end)) || extra;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION record_plan_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change record;
BEGIN
    -- OLD is NULL on INSERT. An expression, not a query: no executor run per row.
    change := plan_changes(OLD, NEW);
    IF cardinality(change.kinds) > 0 THEN
        INSERT INTO activity (customer_pk, kind, at, source, detail)
        SELECT NEW.customer_pk, k, activity_at(), activity_source(), change.detail
        FROM unnest(change.kinds) AS k;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER customer_plans_activity ON customer_plans;
CREATE TRIGGER customer_plans_activity AFTER INSERT OR UPDATE ON customer_plans
    FOR EACH ROW
    WHEN (current_setting('reconciler.plan_activity', true) IS DISTINCT FROM 'explicit')
    EXECUTE FUNCTION record_plan_activity();

-- Whom a subscription's state was stored for: the customer (or an entity's holder) its
-- guard or plan rows are kept under, the entity that holder is for, and whether that entity
-- was deleted (store::entities::STORED_OWNER reads it; inlined where it is used).
CREATE FUNCTION stored_owner(p_subscription_id text)
RETURNS TABLE (customer_pk bigint, entity_id text, deleted boolean)
LANGUAGE sql STABLE AS $$
    SELECT o.customer_pk, e.id, e.deleted_at IS NOT NULL
    FROM ((SELECT s.customer_pk FROM stripe_subscriptions s WHERE s.id = p_subscription_id)
          UNION ALL
          (SELECT p.customer_pk FROM customer_plans p
           WHERE p.stripe_subscription_id = p_subscription_id LIMIT 1)
          LIMIT 1) o
    LEFT JOIN entities e ON e.holder_pk = o.customer_pk
    LIMIT 1
$$;

-- Our customer for a Stripe customer: by its `stripe_id`, else by our id (`by_stripe` false:
-- the Stripe id is still to be linked). store::customers::pk_by_stripe_id_or_id, the
-- one-at-a-time subscription path and the batch's preflight read it (inlined where used).
CREATE FUNCTION customer_for(p_stripe_id text, p_our_id text)
RETURNS TABLE (pk bigint, by_stripe boolean)
LANGUAGE sql STABLE AS $$
    SELECT found.pk, found.by_stripe FROM (
        (SELECT cu.pk, true AS by_stripe FROM customers cu WHERE cu.stripe_id = p_stripe_id)
        UNION ALL
        (SELECT cu.pk, false FROM customers cu WHERE cu.id = p_our_id)) AS found
    ORDER BY found.by_stripe DESC LIMIT 1
$$;

-- What applying each of a batch's subscriptions starts from, in their order
-- (store::subscription_states::preflight): our customer for its Stripe customer (by
-- `stripe_id`, else by our id in its metadata), whom its state was stored for, the guard's
-- `created`, whether it has a scheduled downgrade or an attach, and the plans of its rows that
-- have not ended.
CREATE FUNCTION subscription_preflight(
    p_stripe_customer text[], p_our_id text[], p_subscription_id text[])
RETURNS TABLE (customer_pk bigint, by_stripe boolean, stored_pk bigint, entity_id text,
               deleted boolean, stored_created bigint, scheduled_or_attached boolean,
               live_plans text[])
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT c.pk, c.by_stripe, o.customer_pk, o.entity_id, o.deleted, g.source_created,
           EXISTS (SELECT 1 FROM customer_plans p
                   WHERE p.stripe_subscription_id = i.subscription_id
                     AND p.status = 'scheduled')
           OR EXISTS (SELECT 1 FROM attaches a
                      WHERE a.stripe_subscription_id = i.subscription_id),
           ARRAY(SELECT p.plan_id FROM customer_plans p
                 WHERE p.stripe_subscription_id = i.subscription_id
                   AND p.status NOT IN ('expired', 'scheduled'))
    FROM unnest(p_stripe_customer, p_our_id, p_subscription_id) WITH ORDINALITY
         AS i (stripe_customer, our_id, subscription_id, n)
    LEFT JOIN LATERAL customer_for(i.stripe_customer, i.our_id) c ON true
    LEFT JOIN LATERAL stored_owner(i.subscription_id) o ON true
    LEFT JOIN stripe_subscriptions g ON g.id = i.subscription_id
    ORDER BY i.n;
END
$$;

-- The states, one per array position, bound as sync_subscription_state's parameters are
-- (`p_customer_pk`: whom the state is kept under; no two alike, nor two of one subscription),
-- with each state's source (an event id) for the timeline. Answers each customer's held plans
-- (as apply_subscription_state does; none for a customer who holds none).
--
-- Each write of plan rows also writes their timeline entries (plan_changes of the row before
-- and after: an UPDATE joins the row to itself, `customer_plans o`, whose values are the
-- statement's snapshot, from before the update), attributed to the customer's event at its
-- `created`, as the trigger would have with that event as the transaction's source.
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
    v_updated integer;
BEGIN
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

    PERFORM set_config('reconciler.plan_activity', 'explicit', true);

    -- The plan rows (apply_subscription_state's upsert, as an update and an insert).
    WITH i AS (
        SELECT * FROM unnest(p_id, p_plan_id, p_status, p_period_start, p_period_end,
                             p_cancel_at_period_end, p_canceled_at, p_started_at, p_ended_at,
                             p_quantity, p_cancel_at, p_trial_end, p_event_created,
                             p_changed_at, p_source)
            AS i (id, plan_id, status, period_start, period_end, cancel_at_period_end,
                  canceled_at, started_at, ended_at, quantity, cancel_at, trial_end,
                  event_created, changed_at, source)
    ), written AS (
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
        FROM i, customer_plans o
        WHERE cp.stripe_subscription_id = i.id AND cp.plan_id = i.plan_id AND o.id = cp.id
        RETURNING cp.id, cp AS n, o AS o, i.source, i.event_created
    ), entries AS (
        INSERT INTO activity (customer_pk, kind, at, source, detail)
        SELECT (w.n).customer_pk, k.kind, to_timestamp(w.event_created), w.source, c.detail
        FROM written w
        CROSS JOIN LATERAL plan_changes(w.o, w.n) c
        CROSS JOIN LATERAL unnest(c.kinds) WITH ORDINALITY AS k (kind, ord)
        ORDER BY w.id, k.ord)
    SELECT count(*) INTO v_updated FROM written;

    -- The states of subscriptions without a row for their plan yet.
    IF v_updated < cardinality(p_id) THEN
    WITH i AS (
        SELECT * FROM unnest(p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_status,
                             p_period_start, p_period_end, p_cancel_at_period_end,
                             p_canceled_at, p_started_at, p_ended_at, p_quantity, p_cancel_at,
                             p_event_created, p_trial_end, p_changed_at, p_source)
            AS i (id, customer_pk, plan_id, grp, add_on, status, period_start, period_end,
                  cancel_at_period_end, canceled_at, started_at, ended_at, quantity,
                  cancel_at, event_created, trial_end, changed_at, source)
        WHERE NOT EXISTS (SELECT 1 FROM customer_plans cp
                          WHERE cp.stripe_subscription_id = i.id AND cp.plan_id = i.plan_id)
    ), written AS (
        INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
                stripe_subscription_id, current_period_start, current_period_end,
                cancel_at_period_end, canceled_at, started_at, ended_at, quantity, cancel_at,
                first_seen, last_seen, trial_end)
        SELECT i.customer_pk, i.plan_id, i.grp, i.add_on, i.status, i.id, i.period_start,
               i.period_end, i.cancel_at_period_end, i.canceled_at,
               coalesce(i.started_at, now()),
               CASE WHEN i.status = 'expired' THEN i.changed_at ELSE i.ended_at END,
               i.quantity, i.cancel_at, i.event_created, i.event_created, i.trial_end
        FROM i
        RETURNING customer_plans AS n)
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    SELECT (w.n).customer_pk, k.kind, to_timestamp(i.event_created), i.source, c.detail
    FROM written w
    JOIN i ON i.id = (w.n).stripe_subscription_id AND i.plan_id = (w.n).plan_id
    CROSS JOIN LATERAL plan_changes(NULL, w.n) c
    CROSS JOIN LATERAL unnest(c.kinds) WITH ORDINALITY AS k (kind, ord)
    ORDER BY (w.n).id, k.ord;
    END IF;

    -- settle_group's first statement for each plan that is held now: its group's rivals
    -- end, and a plan without a subscription that ended later had ended by then (disjoint
    -- rows: held ones, ended ones; the latter make no timeline entry).
    IF p_status && held_statuses THEN
    WITH winner AS (
        SELECT w.id, i.customer_pk, i.grp, i.changed_at AS at, i.event_created, i.source
        FROM unnest(p_id, p_customer_pk, p_plan_id, p_group, p_add_on, p_changed_at,
                    p_event_created, p_source)
             AS i (id, customer_pk, plan_id, grp, add_on, changed_at, event_created, source)
        JOIN customer_plans w ON w.stripe_subscription_id = i.id AND w.plan_id = i.plan_id
        WHERE i.grp IS NOT NULL AND NOT i.add_on AND w.status = ANY (held_statuses)
    ), rivals AS (
        UPDATE customer_plans c SET status = 'expired', ended_at = winner.at, updated_at = now()
        FROM winner, customer_plans o
        WHERE c.customer_pk = winner.customer_pk AND c.plan_group = winner.grp AND NOT c.add_on
          AND c.id <> winner.id AND c.status = ANY (held_statuses) AND o.id = c.id
        RETURNING c.id, c AS n, o AS o, winner.source, winner.event_created
    ), local_ended AS (
        UPDATE customer_plans c SET ended_at = winner.at, updated_at = now()
        FROM winner, customer_plans o
        WHERE c.customer_pk = winner.customer_pk AND c.plan_group = winner.grp
          AND NOT c.add_on AND c.stripe_subscription_id IS NULL AND c.status = 'expired'
          AND c.ended_at > winner.at AND c.started_at <= winner.at AND o.id = c.id
        RETURNING c.id, c AS n, o AS o, winner.source, winner.event_created)
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    SELECT (w.n).customer_pk, k.kind, to_timestamp(w.event_created), w.source, c.detail
    FROM (SELECT * FROM rivals UNION ALL SELECT * FROM local_ended) w
    CROSS JOIN LATERAL plan_changes(w.o, w.n) c
    CROSS JOIN LATERAL unnest(c.kinds) WITH ORDINALITY AS k (kind, ord)
    ORDER BY w.id, k.ord;
    END IF;

    -- settle_group's second: a group left with no held plan but its default (and not an
    -- entity's holder) gets the default plan back (activate_default_plan). A plan that is
    -- held now holds its group, so only the others' groups are looked at.
    IF NOT (p_status <@ held_statuses) THEN
    WITH d AS (
        SELECT i.customer_pk, i.default_id, i.grp, i.default_add_on, i.changed_at AS at,
               i.stripe_status = 'canceled' AS restart, i.event_created, i.source
        FROM unnest(p_customer_pk, p_default_id, p_group, p_add_on, p_default_add_on,
                    p_changed_at, p_stripe_status, p_event_created, p_source, p_status)
             AS i (customer_pk, default_id, grp, add_on, default_add_on, changed_at,
                   stripe_status, event_created, source, status)
        WHERE i.grp IS NOT NULL AND NOT i.add_on AND i.default_id IS NOT NULL
          AND NOT (i.status = ANY (held_statuses))
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
        FROM d, customer_plans o
        WHERE c.customer_pk = d.customer_pk AND c.plan_id = d.default_id
          AND c.stripe_subscription_id IS NULL
          AND (c.status <> 'active' OR (d.restart AND c.started_at < d.at)) AND o.id = c.id
        RETURNING c.id, c AS n, o AS o, d.source, d.event_created
    ), started AS (
        INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status, started_at)
        SELECT d.customer_pk, d.default_id, d.grp, d.default_add_on, 'active', d.at FROM d
        WHERE NOT EXISTS (SELECT 1 FROM customer_plans c
                          WHERE c.customer_pk = d.customer_pk AND c.plan_id = d.default_id
                            AND c.stripe_subscription_id IS NULL)
        RETURNING customer_plans AS n)
    INSERT INTO activity (customer_pk, kind, at, source, detail)
    SELECT (w.n).customer_pk, k.kind, to_timestamp(w.event_created), w.source, c.detail
    FROM (SELECT r.n, r.o, r.source, r.event_created FROM restarted r
          UNION ALL
          SELECT s.n, NULL, d.source, d.event_created
          FROM started s JOIN d ON d.customer_pk = (s.n).customer_pk) w
    CROSS JOIN LATERAL plan_changes(w.o, w.n) c
    CROSS JOIN LATERAL unnest(c.kinds) WITH ORDINALITY AS k (kind, ord)
    ORDER BY (w.n).id, k.ord;
    END IF;

    PERFORM set_config('reconciler.plan_activity', '', true);

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
