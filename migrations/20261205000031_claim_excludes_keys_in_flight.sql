-- One claimer per ordering key at a time, also when an event arrives late (issue 23).
--
-- A head is the earliest pending job of its key. An event stored after a later event of its
-- key was claimed (Stripe does not deliver in order) is such a head, so a second worker took
-- it while the first still applied the later one: two transactions wrote one customer's rows
-- at once and deadlocked (Postgres finds a deadlock after `deadlock_timeout`, 1 s; the
-- benchmark at a steady 1,000 events/s saw it several times a minute). A claim now also takes
-- a transaction-scoped advisory lock on each head's key, and a key another transaction holds
-- is passed over until that one ends. The lock is tried only for a row that is a head (the
-- CASE keeps that order; the planner would otherwise try it first, as the cheapest
-- condition), in a class of its own (the two-integer form), so it never meets the
-- application's own advisory locks.
CREATE OR REPLACE FUNCTION claim_jobs(batch bigint)
RETURNS TABLE (id bigint, kind text, job_key text, ordering_key text, args jsonb,
               attempts integer, enqueued_at timestamptz)
LANGUAGE sql VOLATILE
SET enable_seqscan = off
SET enable_sort = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET jit = off
AS $$
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
    FOR UPDATE OF j SKIP LOCKED
$$;
