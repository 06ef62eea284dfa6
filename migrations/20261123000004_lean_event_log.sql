-- Every index on the event log is paid for by every webhook. Nothing reads events by
-- customer, and listing or replaying by type scans the received_at range instead.
DROP INDEX IF EXISTS events_customer_idx;
DROP INDEX IF EXISTS events_type_idx;
