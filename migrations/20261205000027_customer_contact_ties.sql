-- Our PATCH of a linked customer's name or email moves `stripe_synced_created` to the second
-- it was made in and marks it ours (`contact_local`): a Stripe event from an earlier second is
-- older than our change and is not copied (it used to overwrite ours, while our push left
-- Stripe with ours). An event from that same second cannot be ordered against our change: it
-- is not copied either, and the Stripe customer is read once our push has run
-- (`customer.refresh`), which settles both sides on whatever Stripe has last.
ALTER TABLE customers ADD COLUMN contact_local boolean NOT NULL DEFAULT false;
