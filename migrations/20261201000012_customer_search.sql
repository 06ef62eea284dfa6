-- Customer search (GET /v1/customers?search=): a case-insensitive substring of the id, name
-- or email, answered from a trigram index (pg_trgm ships with PostgreSQL's contrib modules;
-- creating it needs the CREATE privilege on the database, which the owner has).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX customers_search_idx ON customers
    USING gin ((lower(coalesce(id, '') || ' ' || coalesce(name, '') || ' ' || coalesce(email, '')))
               gin_trgm_ops);
