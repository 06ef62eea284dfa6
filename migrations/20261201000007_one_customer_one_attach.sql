-- Uniqueness that concurrency cannot break.
--
-- 1. A pre-created customer (no id yet) is found by email: at most one per email, so
--    concurrent email-only get-or-create calls end with one customer. Duplicates made by the
--    race this closes would make the index fail; they are refused with a clear message
--    instead of being merged behind the operator's back (they may hold plans of their own).
DO $$
DECLARE
    duplicated text;
BEGIN
    SELECT string_agg(email, ', ') INTO duplicated
    FROM (SELECT lower(email) AS email FROM customers WHERE id IS NULL
          GROUP BY lower(email) HAVING count(*) > 1) d;
    IF duplicated IS NOT NULL THEN
        RAISE EXCEPTION 'pre-created customers share an email (%): give all but one an id '
                        'or delete them, then start again (docs/RUNBOOK.md)', duplicated;
    END IF;
END $$;
DROP INDEX customers_unclaimed_email_idx;
CREATE UNIQUE INDEX customers_unclaimed_email_key ON customers (lower(email)) WHERE id IS NULL;

-- 2. At most one attach in flight per (customer, plan): a second attach of the same plan
--    returns the first instead of creating another subscription or Checkout Session. Older
--    duplicates in flight are marked failed (their Checkout Session, if paid, still completes
--    the plan through checkout.session.completed).
UPDATE attaches a SET state = 'failed', updated_at = now(),
       error = 'superseded by a later attach of the same plan'
WHERE state IN ('pending', 'checkout_required', 'awaiting_payment')
  AND EXISTS (SELECT 1 FROM attaches b
              WHERE b.customer_pk = a.customer_pk AND b.plan_id = a.plan_id
                AND b.state IN ('pending', 'checkout_required', 'awaiting_payment')
                AND (b.created_at, b.id) > (a.created_at, a.id));
CREATE UNIQUE INDEX attaches_in_flight_key ON attaches (customer_pk, plan_id)
    WHERE state IN ('pending', 'checkout_required', 'awaiting_payment');

-- 3. What `reconcile` last found billing twice: more than one live Stripe subscription for
--    one plan of one customer. Read by /metrics (reconciler_duplicate_subscriptions) and
--    `status`; a customer's rows are replaced each time reconcile looks at them.
CREATE TABLE duplicate_subscriptions (
    customer_pk       bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    plan_id           text NOT NULL,
    subscription_ids  text[] NOT NULL,
    found_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_pk, plan_id)
);
