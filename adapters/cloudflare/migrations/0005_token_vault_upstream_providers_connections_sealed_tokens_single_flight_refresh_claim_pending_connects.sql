-- Migration 5 of core/src/store/migrations.rs (token vault: upstream providers, connections (sealed tokens, single-flight refresh claim), pending connects).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE providers (
  name TEXT PRIMARY KEY,
  resource TEXT NOT NULL,
  config TEXT NOT NULL,
  client_secret TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX providers_resource ON providers (resource);
CREATE TABLE connections (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  provider TEXT NOT NULL,
  state TEXT NOT NULL,
  scope TEXT NOT NULL,
  access_token TEXT NOT NULL,
  refresh_token TEXT,
  expires_at INTEGER,
  claimed_until INTEGER NOT NULL DEFAULT 0,
  version INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX connections_owner_provider ON connections (owner, provider);
CREATE INDEX connections_provider ON connections (provider);
CREATE TABLE connect_requests (
  state_hash TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  provider TEXT NOT NULL,
  verifier TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX connect_requests_expiry ON connect_requests (expires_at);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (5, 'token vault: upstream providers, connections (sealed tokens, single-flight refresh claim), pending connects', CAST(strftime('%s', 'now') AS INTEGER));
