-- The continuous audit against Stripe (src/audit.rs): one row per run that was not a dry run.
-- The console shows the newest; the next run audits the customers changed since `next_since`
-- (this run's start, or earlier when a customer was skipped because work of theirs was still
-- queued); `reconciler_drift_total{field}` sums `drift` over the finished rows.
CREATE TABLE audits (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('changed', 'all')),
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    next_since  timestamptz,
    checked     integer NOT NULL DEFAULT 0,   -- customers compared
    busy        integer NOT NULL DEFAULT 0,   -- skipped: events or jobs of theirs still queued
    drifted     integer NOT NULL DEFAULT 0,   -- customers with a difference
    repaired    integer NOT NULL DEFAULT 0,   -- of those, customers left equal to Stripe
    drift       jsonb NOT NULL DEFAULT '{}'   -- field -> differences found
);
CREATE INDEX audits_finished_idx ON audits (finished_at) WHERE finished_at IS NOT NULL;
