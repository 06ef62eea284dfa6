-- The catalog, versioned: every distinct catalog the daemon has served, and the current plans
-- with the Stripe objects created for them.
CREATE TABLE catalog_versions (
    version     serial PRIMARY KEY,
    digest      text NOT NULL UNIQUE,
    body        jsonb NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog_plans (
    id                  text PRIMARY KEY,
    body                jsonb NOT NULL,
    version             integer NOT NULL REFERENCES catalog_versions (version),
    stripe_account      text,
    stripe_product_id   text,
    stripe_price_id     text,
    usage_prices        jsonb NOT NULL DEFAULT '{}'   -- feature id -> Stripe price id
);

-- Customers: our id (null while a pre-created customer waits to be claimed by email).
CREATE TABLE customers (
    pk            bigserial PRIMARY KEY,
    id            text UNIQUE,
    name          text,
    email         text,
    fingerprint   text,
    stripe_id     text UNIQUE,
    metadata      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_unclaimed_email_idx ON customers (lower(email)) WHERE id IS NULL;

-- The plans a customer has or had. A Stripe subscription maps to one row per plan.
CREATE TABLE customer_plans (
    id                      bigserial PRIMARY KEY,
    customer_pk             bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    plan_id                 text NOT NULL,
    plan_group              text,
    add_on                  boolean NOT NULL DEFAULT false,
    status                  text NOT NULL
                            CHECK (status IN ('active', 'trialing', 'past_due', 'scheduled', 'canceled', 'expired')),
    stripe_subscription_id  text,
    current_period_start    timestamptz,
    current_period_end      timestamptz,
    cancel_at_period_end    boolean NOT NULL DEFAULT false,
    canceled_at             timestamptz,
    started_at              timestamptz NOT NULL DEFAULT now(),
    ended_at                timestamptz,
    quantity                integer NOT NULL DEFAULT 1,
    -- Ordering guard: the Stripe `created` and status rank of the newest event applied.
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX customer_plans_subscription_idx
    ON customer_plans (stripe_subscription_id, plan_id) WHERE stripe_subscription_id IS NOT NULL;
CREATE UNIQUE INDEX customer_plans_local_idx
    ON customer_plans (customer_pk, plan_id) WHERE stripe_subscription_id IS NULL;
CREATE INDEX customer_plans_customer_idx ON customer_plans (customer_pk, status);

-- Per Stripe subscription: the newest event applied (the ordering guard), and the service
-- period whose usage allowance was last reset (so a renewal resets once).
CREATE TABLE stripe_subscriptions (
    id                  text PRIMARY KEY,
    customer_pk         bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    plan_id             text,
    status              text,
    source_created      bigint NOT NULL DEFAULT 0,
    source_rank         integer NOT NULL DEFAULT 0,
    reset_period_end    timestamptz
);

-- What a customer may use, per feature.
CREATE TABLE balances (
    customer_pk     bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    feature_id      text NOT NULL,
    included        bigint NOT NULL DEFAULT 0,
    used            bigint NOT NULL DEFAULT 0,
    unlimited       boolean NOT NULL DEFAULT false,
    overage_allowed boolean NOT NULL DEFAULT false,   -- usage over `included` is billed, not refused
    subscription_backed boolean NOT NULL DEFAULT false, -- resets on Stripe renewals, not by the clock
    reset           text,                 -- day|week|month|year|never, from the plan item
    reset_plan_id   text,                 -- the plan whose item sets the reset
    next_reset_at   timestamptz,
    PRIMARY KEY (customer_pk, feature_id)
);

-- Usage recorded by /v1/track, once per idempotency key.
CREATE TABLE usage_events (
    id               bigserial PRIMARY KEY,
    customer_pk      bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    feature_id       text NOT NULL,
    value            bigint NOT NULL,
    idempotency_key  text,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX usage_events_key_idx ON usage_events (customer_pk, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX usage_events_period_idx ON usage_events (customer_pk, feature_id, recorded_at);

CREATE TABLE invoices (
    stripe_id           text PRIMARY KEY,
    customer_pk         bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    status              text NOT NULL,
    billing_reason      text,
    total               bigint NOT NULL,
    currency            text NOT NULL,
    plan_ids            text[] NOT NULL DEFAULT '{}',
    hosted_invoice_url  text,
    stripe_subscription_id text,
    period_start        timestamptz,
    period_end          timestamptz,
    created_at          timestamptz NOT NULL,
    source_created      bigint NOT NULL DEFAULT 0,
    source_rank         integer NOT NULL DEFAULT 0
);
CREATE INDEX invoices_customer_idx ON invoices (customer_pk, created_at DESC);

-- Attaches waiting for Stripe: a direct subscription or a Checkout Session.
CREATE TABLE attaches (
    id                      text PRIMARY KEY,
    customer_pk             bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    plan_id                 text NOT NULL,
    state                   text NOT NULL
                            CHECK (state IN ('pending', 'checkout_required', 'awaiting_payment', 'active', 'scheduled', 'completed', 'expired', 'failed')),
    success_url             text,
    cancel_url              text,
    checkout_session_id     text UNIQUE,
    checkout_url            text,
    stripe_subscription_id  text,
    error                   text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attaches_subscription_idx ON attaches (stripe_subscription_id) WHERE stripe_subscription_id IS NOT NULL;
