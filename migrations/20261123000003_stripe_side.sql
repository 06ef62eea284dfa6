-- Usage billed on renewal invoices: one row per (invoice, feature), so a redelivered or
-- retried invoice.created never bills twice.
CREATE TABLE invoice_usage_items (
    invoice_id      text NOT NULL,
    feature_id      text NOT NULL,
    customer_pk     bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    units           bigint NOT NULL,
    amount          bigint NOT NULL,
    stripe_item_id  text,             -- null when nothing was over the included amount
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, feature_id)
);
