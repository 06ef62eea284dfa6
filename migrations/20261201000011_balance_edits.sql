-- Balance edits by an operator (POST /v1/balances): grant, set or deduct, each lasting until
-- the feature's next reset. `adjustment` is what the edits add to what the plans include;
-- a reset (a renewal, or the clock) sets it back to 0 with `used`.
ALTER TABLE balances ADD COLUMN adjustment bigint NOT NULL DEFAULT 0;

-- Every edit, for the timeline and to apply each idempotency key once.
CREATE TABLE balance_edits (
    id               bigserial PRIMARY KEY,
    customer_pk      bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    feature_id       text NOT NULL,
    op               text NOT NULL CHECK (op IN ('grant', 'set', 'deduct')),
    amount           bigint NOT NULL,
    reason           text,
    actor            text NOT NULL,
    idempotency_key  text,
    balance_after    bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX balance_edits_key ON balance_edits (customer_pk, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX balance_edits_customer_idx ON balance_edits (customer_pk, created_at DESC);
