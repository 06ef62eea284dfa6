-- Event payloads (3-6 KB of JSON) are compressed by TOAST on every webhook. pglz costs more
-- CPU than the rest of the insert; lz4 is several times cheaper both ways. Servers built
-- without lz4 keep pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
    END IF;
END $$;
