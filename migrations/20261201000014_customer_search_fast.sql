-- Customer search under 20 ms at a million customers (BENCHMARKS.md, "Customer search at a
-- million customers").
--
-- One trigram index per column instead of one over `id name email` joined: a search is a
-- substring of the id, the name or the email, and an id's trigrams no longer answer for an
-- email fragment (nor a match run across two columns).
DROP INDEX IF EXISTS customers_search_idx;
CREATE INDEX customers_id_trgm_idx ON customers USING gin (lower(id) gin_trgm_ops);
CREATE INDEX customers_name_trgm_idx ON customers USING gin (lower(name) gin_trgm_ops);
CREATE INDEX customers_email_trgm_idx ON customers USING gin (lower(email) gin_trgm_ops);

-- How common each trigram is (ANALYZE keeps its most common ones with their frequencies,
-- `pg_stats_ext_exprs.most_common_elems`): the search looks its text up by its rare parts
-- only, since a trigram in most customers (`use` of `user_...`, `cus` of `customer...@`)
-- costs the index a posting list a million entries long and narrows nothing. Expression
-- statistics need PostgreSQL 14 or newer.
CREATE STATISTICS customers_search_trgm_stats
    ON (show_trgm(lower(coalesce(id, '') || ' ' || coalesce(name, '') || ' ' || coalesce(email, ''))))
    FROM customers;

-- The plan and status filters driven from the plans when those are rarer than the text
-- (`plan_id=enterprise`, `status=past_due`): without these, finding none of them walked
-- every customer.
CREATE INDEX customer_plans_plan_idx ON customer_plans (plan_id, status, customer_pk);
CREATE INDEX customer_plans_status_idx ON customer_plans (status, customer_pk);

-- The statistics above exist from now on, not from the next automatic ANALYZE.
ANALYZE customers;
ANALYZE customer_plans;
