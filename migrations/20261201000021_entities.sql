-- Entities (issue 17): teams or workspaces inside a customer. Creating one uses a unit of a
-- feature of the customer's (a seat); an entity may hold plans of its own.
--
-- An entity's plans, balances, usage and subscriptions are kept exactly as a customer's are,
-- under a `customers` row of its own that stands for it, its *holder*: no id, name, email or
-- Stripe id, and `parent_pk` naming the customer. So every rule of plans and balances (one
-- held plan per group, the ordering guard, renewals, suspension, per-unit items) applies to
-- an entity unchanged, apart from the customer's. A holder is never listed as a customer and
-- never linked to Stripe: an entity's subscriptions bill its customer's Stripe customer.
ALTER TABLE customers
    ADD COLUMN parent_pk bigint REFERENCES customers (pk) ON DELETE CASCADE,
    ADD CONSTRAINT customers_holder_check
        CHECK (parent_pk IS NULL OR (id IS NULL AND email IS NULL AND stripe_id IS NULL));
CREATE INDEX customers_parent_idx ON customers (parent_pk) WHERE parent_pk IS NOT NULL;

-- A deleted entity keeps its row (`deleted_at`), so the events of a subscription it had map
-- to it (and are skipped) instead of to a new entity given the same id.
CREATE TABLE entities (
    pk           bigserial PRIMARY KEY,
    customer_pk  bigint NOT NULL REFERENCES customers (pk) ON DELETE CASCADE,
    id           text NOT NULL,
    name         text,
    feature_id   text NOT NULL,
    holder_pk    bigint NOT NULL UNIQUE REFERENCES customers (pk) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
CREATE UNIQUE INDEX entities_live_idx ON entities (customer_pk, id) WHERE deleted_at IS NULL;
CREATE INDEX entities_customer_idx ON entities (customer_pk, created_at);

-- The timeline is the customer's: what happens to an entity's plans (written by the plan
-- triggers under its holder) lands in its customer's timeline, naming the entity.
CREATE FUNCTION activity_of_entity() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner record;
BEGIN
    SELECT e.customer_pk, e.id INTO owner FROM entities e WHERE e.holder_pk = NEW.customer_pk;
    IF FOUND THEN
        NEW.customer_pk := owner.customer_pk;
        NEW.detail := NEW.detail || jsonb_build_object('entity_id', owner.id);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER activity_of_entity BEFORE INSERT ON activity
    FOR EACH ROW EXECUTE FUNCTION activity_of_entity();
