-- Migration 4 of core/src/store/migrations.rs (bounded storage: pending-request owners, expiry indexes for the purge).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE auth_requests ADD COLUMN client_id TEXT;
ALTER TABLE auth_requests ADD COLUMN ip_bucket TEXT;
CREATE INDEX auth_requests_client ON auth_requests (client_id, expires_at);
CREATE INDEX auth_requests_ip ON auth_requests (ip_bucket, expires_at);
CREATE INDEX auth_requests_expiry ON auth_requests (expires_at);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (4, 'bounded storage: pending-request owners, expiry indexes for the purge', CAST(strftime('%s', 'now') AS INTEGER));
