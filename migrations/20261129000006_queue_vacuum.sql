-- `jobs` is a queue: every row is inserted, then deleted within milliseconds. Vacuum it after
-- every few thousand deletions (not after 20 % of a table that is nearly always small), so
-- claims do not step over long runs of dead index entries at the head of the queue, and do
-- not truncate it (truncating takes an exclusive lock that stalls ingest and claims, and
-- the space is reused at once).
ALTER TABLE jobs SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_analyze_scale_factor = 0,
    autovacuum_analyze_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0,
    vacuum_truncate = false
);
