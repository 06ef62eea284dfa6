-- Enqueuing an outbound job wakes the workers by itself: when the transaction that inserted
-- it commits, every instance LISTENing on the channel hears of it (its own included), so no
-- caller has to remember a wake-up. Event jobs are left out: the appender wakes local workers
-- per commit and tells peers at most once per interval (a NOTIFY per event would serialise
-- commits on its database-wide lock). NOTIFYs with the same payload in one transaction are
-- sent once.
CREATE FUNCTION jobs_wake_workers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('stripe_reconciler_jobs', 'enqueued');
    RETURN NULL;
END $$;

CREATE TRIGGER jobs_wake_workers AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.kind <> 'stripe_event')
    EXECUTE FUNCTION jobs_wake_workers();
