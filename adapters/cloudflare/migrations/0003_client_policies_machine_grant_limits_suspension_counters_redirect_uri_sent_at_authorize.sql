-- Migration 3 of core/src/store/migrations.rs (client policies (machine grant, limits, suspension), counters, redirect_uri sent at authorize).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE client_policies (
  client_id TEXT PRIMARY KEY,
  client_credentials INTEGER NOT NULL DEFAULT 0,
  rate_limit_per_minute INTEGER,
  daily_token_quota INTEGER,
  suspended_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE TABLE counters (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX counters_expiry ON counters (expires_at);
ALTER TABLE auth_codes ADD COLUMN redirect_uri_sent INTEGER NOT NULL DEFAULT 1;
INSERT INTO schema_migrations (version, name, applied_at) VALUES (3, 'client policies (machine grant, limits, suspension), counters, redirect_uri sent at authorize', CAST(strftime('%s', 'now') AS INTEGER));
