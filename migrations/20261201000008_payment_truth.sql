-- Payment truth: nothing is granted before it is paid, and the customer learns what to do.

-- 1. A plan keeps Stripe's own status: `incomplete` (first payment not made), `paused` and
--    `unpaid` are no longer folded into `past_due`. Which of them grant access is decided in
--    code (`billing.past_due_access`), not here. Rows folded before are left as they are:
--    the next event or `reconcile` writes the honest status.
ALTER TABLE customer_plans DROP CONSTRAINT customer_plans_status_check;
ALTER TABLE customer_plans ADD CONSTRAINT customer_plans_status_check
    CHECK (status IN ('active', 'trialing', 'past_due', 'unpaid', 'incomplete', 'paused',
                      'scheduled', 'canceled', 'expired'));
-- The date a subscription is set to cancel at (dashboard, flexible billing mode), shown
-- beside `cancel_at_period_end`.
ALTER TABLE customer_plans ADD COLUMN cancel_at timestamptz;

-- 2. An attach whose first payment needs the customer (3-D Secure, or a declined card to
--    replace) is `requires_action`, with the URL where they complete it. It is in flight.
ALTER TABLE attaches DROP CONSTRAINT attaches_state_check;
ALTER TABLE attaches ADD CONSTRAINT attaches_state_check
    CHECK (state IN ('pending', 'checkout_required', 'awaiting_payment', 'requires_action',
                     'active', 'scheduled', 'completed', 'expired', 'failed'));
ALTER TABLE attaches ADD COLUMN action_url text;
DROP INDEX attaches_in_flight_key;
CREATE UNIQUE INDEX attaches_in_flight_key ON attaches (customer_pk, plan_id)
    WHERE state IN ('pending', 'checkout_required', 'awaiting_payment', 'requires_action');

-- 3. A balance whose only grants come from suspended plans (paused, or past due beyond the
--    access policy) is kept, usage and all, but `check` refuses it until the plan is back.
ALTER TABLE balances ADD COLUMN suspended boolean NOT NULL DEFAULT false;
