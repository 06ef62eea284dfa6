-- Free trials (issue 17): a plan's `free_trial` is given once per customer and once per
-- fingerprint (the seeds: "limit free trials to one per fingerprint"). A claim outlives its
-- customer (deleting and recreating an account does not give a second trial); one whose
-- attach failed or expired (the trial never started) no longer counts.
CREATE TABLE trials (
    id           bigserial PRIMARY KEY,
    customer_pk  bigint REFERENCES customers (pk) ON DELETE SET NULL,
    fingerprint  text,
    plan_id      text NOT NULL,
    attach_id    text NOT NULL,
    days         integer NOT NULL CHECK (days > 0),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trials_customer_idx ON trials (customer_pk, plan_id);
CREATE INDEX trials_fingerprint_idx ON trials (fingerprint, plan_id) WHERE fingerprint IS NOT NULL;

-- The trial an attach gives (days), and its end once Stripe set it.
ALTER TABLE attaches ADD COLUMN trial_days integer, ADD COLUMN trial_end timestamptz;

-- A trialing plan's end of trial, from its subscription.
ALTER TABLE customer_plans ADD COLUMN trial_end timestamptz;
