-- Rewards (issue 17): the catalog's `[[rewards]]` become Stripe coupons, lazily and per
-- account; a reward (or a promotion code the customer typed) is given with an attach or to a
-- live subscription; Stripe's discounts are kept in sync from `customer.discount.*`, and
-- invoices show what they took off.

-- The coupons we know: those made for a catalog reward (`reward_id`, the reward's content
-- digest and the account fingerprint they were made in: an edited reward or another account
-- gets a new coupon, and the old ones keep mapping to their reward), and any other coupon a
-- discount names (from `coupon.*` events, or read from Stripe). Coupons cannot change what
-- they take off, so the details stay right; `deleted` coupons keep discounts made from them.
CREATE TABLE stripe_coupons (
    id                  text PRIMARY KEY,
    reward_id           text,
    reward_digest       text,
    stripe_account      text,
    name                text,
    percent_off         double precision,
    amount_off          bigint,
    currency            text,
    duration            text,
    duration_in_months  integer,
    deleted             boolean NOT NULL DEFAULT false,
    -- The newest `coupon.*` event applied (0: only read from the API so far).
    source_created      bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_coupons_reward_idx ON stripe_coupons (reward_id, stripe_account, reward_digest)
    WHERE reward_id IS NOT NULL;

-- Stripe's discounts on our customers' subscriptions (`di_...`), as their newest event showed
-- them: created (rank 0), then removed (`customer.discount.deleted`, rank 1, for good: a
-- discount id is never redeemed again), so they converge in any delivery order.
CREATE TABLE customer_discounts (
    id                      text PRIMARY KEY,
    customer_pk             bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    coupon_id               text NOT NULL,
    promotion_code_id       text,
    stripe_subscription_id  text,
    start_at                timestamptz NOT NULL,
    -- A repeating coupon's end (`end`); null for once and forever.
    end_at                  timestamptz,
    -- When `customer.discount.deleted` said it went (its `created`).
    removed_at              timestamptz,
    source_created          bigint NOT NULL,
    source_rank             integer NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_discounts_customer_idx ON customer_discounts (customer_pk, start_at);
CREATE INDEX customer_discounts_subscription_idx ON customer_discounts (stripe_subscription_id);

-- The reward or promotion code an attach carries to its subscription or Checkout Session,
-- or that its Checkout Session lets the customer type one.
CREATE TABLE attach_rewards (
    attach_id             text PRIMARY KEY REFERENCES attaches (id) ON DELETE CASCADE,
    reward_id             text,
    promotion_code        text,
    promotion_code_id     text,
    allow_promotion_codes boolean NOT NULL DEFAULT false,
    CHECK ((promotion_code IS NULL) = (promotion_code_id IS NULL)),
    CHECK (num_nonnulls(reward_id, promotion_code_id) <= 1),
    CHECK (NOT allow_promotion_codes OR num_nonnulls(reward_id, promotion_code_id) = 0)
);

-- POST /v1/customers/{id}/rewards: a reward (or a promotion code) for a live subscription,
-- carried out by the `reward.apply` job (Stripe key `rc-reward-{id}-apply`).
CREATE TABLE reward_grants (
    id                      text PRIMARY KEY,
    customer_pk             bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    reward_id               text,
    promotion_code          text,
    promotion_code_id       text,
    plan_id                 text NOT NULL,
    stripe_subscription_id  text NOT NULL,
    state                   text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'done', 'failed')),
    -- `applied`, or `unchanged` when the subscription had a discount from that coupon.
    outcome                 text,
    discount_id             text,
    error                   text,
    actor                   text NOT NULL,
    idempotency_key         text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK ((promotion_code IS NULL) = (promotion_code_id IS NULL)),
    CHECK (num_nonnulls(reward_id, promotion_code_id) = 1)
);
CREATE UNIQUE INDEX reward_grants_key ON reward_grants (customer_pk, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX reward_grants_customer_idx ON reward_grants (customer_pk, created_at DESC);

-- What an invoice took off: `subtotal` before discounts (null for invoices recorded before),
-- `total_discount` the sum of `total_discount_amounts`, and those amounts per discount.
ALTER TABLE invoices
    ADD COLUMN subtotal bigint,
    ADD COLUMN total_discount bigint NOT NULL DEFAULT 0,
    ADD COLUMN discount_amounts jsonb NOT NULL DEFAULT '[]';

-- The timeline: `reward.applied` when a discount is first seen (at its `start`), and
-- `reward.removed` when it is removed (at the removal's `created`), once each, whatever the
-- order its events arrive in (a removal seen first records both).
CREATE FUNCTION record_discount_activity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    detail jsonb := jsonb_strip_nulls(jsonb_build_object(
        'discount_id', NEW.id, 'coupon_id', NEW.coupon_id,
        'reward_id', (SELECT reward_id FROM stripe_coupons WHERE id = NEW.coupon_id),
        'promotion_code_id', NEW.promotion_code_id,
        'subscription_id', NEW.stripe_subscription_id,
        'end', NEW.end_at));
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO activity (customer_pk, kind, at, source, detail)
        VALUES (NEW.customer_pk, 'reward.applied', NEW.start_at, activity_source(), detail);
    END IF;
    IF NEW.removed_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.removed_at IS NULL) THEN
        INSERT INTO activity (customer_pk, kind, at, source, detail)
        VALUES (NEW.customer_pk, 'reward.removed', NEW.removed_at, activity_source(), detail);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER customer_discounts_activity AFTER INSERT OR UPDATE ON customer_discounts
    FOR EACH ROW EXECUTE FUNCTION record_discount_activity();
