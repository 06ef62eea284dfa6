-- The customer view's detail (issue 15): invoice lines, and what a plan's history needs.

-- Each invoice's lines as its newest event shows them (id, description, amount, currency,
-- quantity, period, price and catalog plan), written with the invoice row under the same
-- ordering guard. NULL: the invoice was recorded before lines were kept.
ALTER TABLE invoices ADD COLUMN lines jsonb;

-- The Stripe `created` of the earliest and the newest event that showed this plan on its
-- subscription, counting events older than the subscription's newest (which change nothing
-- else). Both only move outwards (least/greatest), so they end the same in any delivery
-- order; a plan that replaced another on the same subscription started when it was first
-- seen, and the one it replaced ended then. NULL on plans without a subscription.
ALTER TABLE customer_plans ADD COLUMN first_seen bigint, ADD COLUMN last_seen bigint;
