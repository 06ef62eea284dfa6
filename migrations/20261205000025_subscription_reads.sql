-- Whether a subscription's newest applied state was a read of Stripe (an API answer, a tie's
-- read) rather than an event. Within one second, events are ordered by status precedence; a
-- read is not: any state of the same second as a read ties with it (the read may have been
-- taken before or after that change), so it is applied or read again, never dropped as stale.
ALTER TABLE stripe_subscriptions ADD COLUMN source_read boolean NOT NULL DEFAULT false;
