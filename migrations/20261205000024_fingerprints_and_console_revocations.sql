-- Issue 24, defect 11: a fingerprint is stored and compared without the whitespace around it
-- ("fp ", "\tfp" and "fp" are one fingerprint: each got its own free trial). The characters
-- are Unicode White_Space, what Rust's `str::trim` removes from new ones; case is kept.
-- Nothing but whitespace is no fingerprint.
CREATE FUNCTION pg_temp.fingerprint(raw text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT NULLIF(btrim(raw, E'\t\n\u000B\f\r \u0085\u00A0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200A\u2028\u2029\u202F\u205F\u3000'), '')
$$;
UPDATE customers SET fingerprint = pg_temp.fingerprint(fingerprint)
 WHERE fingerprint IS DISTINCT FROM pg_temp.fingerprint(fingerprint);
UPDATE trials SET fingerprint = pg_temp.fingerprint(fingerprint)
 WHERE fingerprint IS DISTINCT FROM pg_temp.fingerprint(fingerprint);

-- Issue 24, defect 12: console sessions signed out, until they would have expired anyway.
-- The session cookie is signed and holds no state, so a signed-out one stays valid by its
-- signature; every instance, and this one after a restart, refuses an id listed here. Rows
-- past `expires_at` are pruned on each sign-out (the cookie is refused by its expiry then).
CREATE TABLE console_revocations (
    session_id  text PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_revocations_expires_idx ON console_revocations (expires_at);
