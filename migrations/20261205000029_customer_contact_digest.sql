-- A Stripe customer's name and email copied into ours, hashed (store::customers::
-- contact_digest): two Stripe events of one second that say different things cannot be
-- ordered by their payloads, so the later-arriving one is not copied over the other; the
-- customer is read from Stripe instead (`customer.refresh`), as a subscription is.
ALTER TABLE customers ADD COLUMN contact_digest text;
