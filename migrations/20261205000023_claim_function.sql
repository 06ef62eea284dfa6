-- The claim, as a function that carries its own planner settings.
--
-- The claim must walk the queue's index in order, probe each candidate's ordering key once by
-- index, and stop when the batch is full; the planner cannot know that heads sit at the front
-- of the queue, and with a large backlog it otherwise picks plans that check every pending row
-- on every claim. These settings used to be `SET LOCAL` on the whole apply transaction, so
-- every handler statement was planned under them too: a statement that still needed a sort was
-- costed at 10^10 and JIT-compiled with inlining (~300 ms a statement, Postgres at its
-- defaults). A function's SET clauses hold only while it runs: the handlers' statements are
-- planned as the server is configured. The claim never needs JIT either.
--
-- A SQL function with SET clauses is never inlined and plans its body on each call, which is
-- what the claim wants (a cached generic plan from when `jobs` was small scans the queue).
CREATE FUNCTION claim_jobs(batch bigint)
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
      AND NOT EXISTS (
          SELECT 1 FROM jobs h
          WHERE h.ordering_key = j.ordering_key
            AND h.state = 'pending'
            AND (h.sort_key, h.id) < (j.sort_key, j.id))
    ORDER BY j.sort_key, j.id
    LIMIT batch
    FOR UPDATE OF j SKIP LOCKED
$$;
