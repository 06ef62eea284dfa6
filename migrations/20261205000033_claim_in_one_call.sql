-- A batch claimed in one call, and finished in one (issue 23, the steady stream's lag).
--
-- A claim was four statements and seven round trips: `claim_jobs`, the followers and the
-- events' load (each sent unnamed, so parsed, described and planned on every call, two round
-- trips each), then at the end the finish (the same). At a steady 1,000 events/s a batch
-- holds five or six events, so that was a round trip and ~0.1 ms of planning per event,
-- on a machine whose two cores the stream keeps ~80 % busy.
--
-- Now `claim_batch` claims the heads, takes the runs queued behind them and answers the
-- jobs with their events, and `finish_events` finishes: one round trip each. Both are
-- PL/pgSQL, whose statements keep one generic plan for the session; the planner switches
-- under which that plan is made (no sequential scans, sorts, hash or merge joins, no JIT,
-- scoped to the functions by their SET clauses) are what makes a kept plan safe: made while
-- the queue was empty, it can only walk the indexes, whatever size the queue and the log
-- grow to (a kept plan that scanned them was the reason these statements were planned
-- afresh on every call). The plan is generic by force: left to choose, PL/pgSQL compared the
-- generic plan's cost (a sort the switches disable counts 10^10) with the custom ones' and
-- planned afresh on every call anyway (~0.15 ms a statement; with the force, claim_followers
-- takes 20 µs instead of 180, finish_events 17 instead of 88).

-- The claim of migration 31, unchanged, its plan kept (PL/pgSQL).
CREATE OR REPLACE FUNCTION claim_jobs(batch bigint)
RETURNS TABLE (id bigint, kind text, job_key text, ordering_key text, args jsonb,
               attempts integer, enqueued_at timestamptz)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    RETURN QUERY
    SELECT j.id, j.kind, j.job_key, j.ordering_key, j.args, j.attempts, j.enqueued_at
    FROM jobs j
    WHERE j.state = 'pending'
      AND j.run_at <= now()
      AND (j.locked_until IS NULL OR j.locked_until < now())
      AND CASE
            WHEN EXISTS (
                SELECT 1 FROM jobs h
                WHERE h.ordering_key = j.ordering_key
                  AND h.state = 'pending'
                  AND (h.sort_key, h.id) < (j.sort_key, j.id)) THEN false
            WHEN j.ordering_key IS NULL THEN true
            -- 1869571960: 'outbox' ordering keys' class (any fixed int4 would do)
            ELSE pg_try_advisory_xact_lock(1869571960, hashtext(j.ordering_key))
          END
    ORDER BY j.sort_key, j.id
    LIMIT batch
    FOR UPDATE OF j SKIP LOCKED;
END
$$;

-- The event jobs queued right behind claimed heads (`heads`, their ids), in key order, up to
-- `room` in all and `per_key` a key, locked: a customer's burst of events is applied in one
-- batch. Only an unbroken run of due event jobs (`event_kind`) right after its head follows
-- it; an outbound job or one waiting for its retry ends its key's run. A follower another
-- transaction holds (an operator's retry, say) is skipped, not waited for, and its key's run
-- ends before it: `place` (a follower's place in its key's run, counted before locking)
-- must equal its rank among the rows this call locked.
CREATE FUNCTION claim_followers(heads bigint[], room bigint, event_kind text, per_key bigint)
RETURNS TABLE (id bigint)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF cardinality(heads) = 0 OR room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH head AS (
        SELECT h.ordering_key, h.sort_key, h.id FROM jobs h
        WHERE h.id = ANY(heads) AND h.ordering_key IS NOT NULL
    ), queued AS (
        SELECT j.id, j.sort_key,
               bool_and(j.kind = event_kind AND j.run_at <= now() AND j.locked_until IS NULL)
                   OVER w AS unbroken,
               row_number() OVER w AS place
        FROM jobs j JOIN head h ON h.ordering_key = j.ordering_key
        WHERE j.state = 'pending' AND (j.sort_key, j.id) > (h.sort_key, h.id)
        WINDOW w AS (PARTITION BY j.ordering_key ORDER BY j.sort_key, j.id)
    ), picked AS (
        SELECT q.id, q.place FROM queued q WHERE q.unbroken AND q.place <= per_key
        ORDER BY q.sort_key, q.id LIMIT room
    ), locked AS (
        SELECT j.id, j.ordering_key, j.sort_key, p.place
        FROM jobs j JOIN picked p ON p.id = j.id
        ORDER BY j.sort_key, j.id
        FOR UPDATE OF j SKIP LOCKED
    )
    SELECT r.id FROM (
        SELECT l.id, l.sort_key, l.place,
               row_number() OVER (PARTITION BY l.ordering_key ORDER BY l.sort_key, l.id) AS got
        FROM locked l
    ) r
    WHERE r.place = r.got
    ORDER BY r.sort_key, r.id;
END
$$;

-- A worker's claim: up to `batch` jobs (the heads, then the runs behind the event heads, up
-- to `per_key` a key), in the order they are to run, each event job with its event (pruned
-- ones: `type` NULL). Only events of a `handled` type carry their payload; the others are
-- skipped unread.
CREATE FUNCTION claim_batch(batch bigint, per_key bigint, event_kind text, handled text[])
RETURNS TABLE (id bigint, kind text, job_key text, ordering_key text, args jsonb,
               attempts integer, enqueued_at timestamptz, type text, created bigint,
               customer_id text, object_id text, payload bytea)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    heads bigint[];
    event_heads bigint[];
    followers bigint[];
BEGIN
    SELECT coalesce(array_agg(c.id ORDER BY c.n), '{}'),
           coalesce(array_agg(c.id ORDER BY c.n)
                        FILTER (WHERE c.kind = event_kind AND c.ordering_key IS NOT NULL), '{}')
      INTO heads, event_heads
      FROM claim_jobs(batch) WITH ORDINALITY AS c(id, kind, job_key, ordering_key, args,
                                                 attempts, enqueued_at, n);
    IF cardinality(heads) = 0 THEN
        RETURN;
    END IF;
    followers := ARRAY(SELECT f.id FROM claim_followers(event_heads, batch - cardinality(heads),
                                                        event_kind, per_key) f);
    RETURN QUERY
    SELECT j.id, j.kind, j.job_key, j.ordering_key, j.args, j.attempts, j.enqueued_at,
           e.type, e.created, e.customer_id, e.object_id,
           CASE WHEN e.type = ANY(handled) THEN e.payload ELSE ''::bytea END
    FROM unnest(heads || followers) WITH ORDINALITY AS t(id, n)
    JOIN jobs j ON j.id = t.id
    LEFT JOIN events e ON j.kind = event_kind AND e.id = j.job_key
    ORDER BY t.n;
END
$$;

-- Finishes a batch's event jobs: deletes them, records their outcomes (`states`, `notes`,
-- by `event_ids`), and answers whether other jobs are still pending under their ordering
-- `keys` (now runnable, with no wake-up to say so). The statement sees the queue as it was
-- before its DELETE, hence `id <> ALL(job_ids)` in the look for successors, one probe of the
-- ordering index per key.
CREATE FUNCTION finish_events(job_ids bigint[], event_ids text[], states text[], notes text[],
                              keys text[])
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    behind boolean;
BEGIN
    WITH done AS (DELETE FROM jobs WHERE jobs.id = ANY(job_ids)),
    recorded AS (
        UPDATE events e SET state = f.state, attempts = e.attempts + 1,
               last_error = f.note, finished_at = clock_timestamp()
        FROM unnest(event_ids, states, notes) AS f(id, state, note)
        WHERE e.id = ANY(event_ids) AND e.id = f.id)
    SELECT EXISTS (
        SELECT 1 FROM unnest(keys) AS k(key)
        CROSS JOIN LATERAL (SELECT 1 FROM jobs
                            WHERE jobs.ordering_key = k.key AND jobs.state = 'pending'
                              AND jobs.id <> ALL(job_ids)
                            LIMIT 1) AS q)
      INTO behind;
    RETURN behind;
END
$$;
