-- Migration 8 of core/src/store/migrations.rs (client last use (coarse), indexes for grant, session and token lookups by subject and client).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
CREATE INDEX grants_subject ON grants (subject, created_at);
CREATE INDEX grants_client ON grants (client_id, created_at);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX access_tokens_client ON access_tokens (client_id, expires_at);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (8, 'client last use (coarse), indexes for grant, session and token lookups by subject and client', CAST(strftime('%s', 'now') AS INTEGER));
