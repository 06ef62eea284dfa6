-- The event log: every authentic Stripe event, exactly as delivered, deduplicated on its id.
CREATE TABLE events (
    id            text PRIMARY KEY,
    type          text NOT NULL,
    created       bigint NOT NULL,              -- Stripe's `created`, unix seconds
    livemode      boolean NOT NULL,
    api_version   text,
    account       text,
    object_id     text,
    customer_id   text,
    payload       bytea NOT NULL,               -- the raw body, byte for byte
    received_at   timestamptz NOT NULL DEFAULT now(),
    state         text NOT NULL DEFAULT 'received'
                  CHECK (state IN ('received', 'processing', 'applied', 'skipped', 'failed', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    finished_at   timestamptz
);
CREATE INDEX events_received_at_idx ON events (received_at);
CREATE INDEX events_type_idx ON events (type, received_at);
CREATE INDEX events_customer_idx ON events (customer_id, created) WHERE customer_id IS NOT NULL;

-- The hot queue: one row per unit of work still to do (an event to apply, an outbound job).
-- Rows leave when the work is finished, so claims stay fast; dead rows stay until retried.
CREATE TABLE jobs (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL,                -- 'stripe_event' or an outbound job kind
    job_key       text NOT NULL UNIQUE,         -- the event id, or the job's idempotency key
    ordering_key  text,                         -- jobs sharing it run one at a time, in order
    sort_key      bigint NOT NULL,              -- Stripe `created` for events
    args          jsonb,                        -- arguments of outbound jobs
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    run_at        timestamptz NOT NULL DEFAULT now(),
    locked_until  timestamptz,                  -- lease for work done outside a transaction
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    enqueued_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_runnable_idx ON jobs (sort_key, id) WHERE state = 'pending';
CREATE INDEX jobs_ordering_idx ON jobs (ordering_key, sort_key, id) WHERE state = 'pending';
