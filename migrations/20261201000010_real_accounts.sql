-- Real Stripe accounts: customers linked from either side, events caught up from the Events API.

-- The newest `customer.*` event whose name and email were copied into ours (newest wins), and
-- how many times the customer was unlinked from a deleted Stripe customer: the next Stripe
-- customer made for it needs an idempotency key of its own.
ALTER TABLE customers ADD COLUMN stripe_synced_created bigint NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN stripe_generation integer NOT NULL DEFAULT 0;

-- How an event reached us: a webhook delivery, or `catch-up` from Stripe's Events API.
ALTER TABLE events ADD COLUMN received_via text NOT NULL DEFAULT 'webhook'
    CHECK (received_via IN ('webhook', 'catch_up'));

-- Linking a customer re-applies its events that were skipped for want of the link: found by
-- their Stripe customer. Only skipped events are indexed, so ingest pays nothing for it.
CREATE INDEX events_skipped_customer_idx ON events (customer_id, created)
    WHERE state = 'skipped' AND customer_id IS NOT NULL;
