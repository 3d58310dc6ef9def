-- Migration 9 of core/src/store/migrations.rs (oidc connectors and external identities).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE connectors (
  id TEXT PRIMARY KEY,
  config TEXT NOT NULL,
  client_secret TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE connector_logins (
  state_hash TEXT PRIMARY KEY,
  connector TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  nonce_hash TEXT NOT NULL,
  verifier TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX connector_logins_expiry ON connector_logins (expires_at);
CREATE TABLE identities (
  connector TEXT NOT NULL,
  subject TEXT NOT NULL,
  user_id TEXT NOT NULL,
  email TEXT,
  groups TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  last_login_at INTEGER NOT NULL,
  PRIMARY KEY (connector, subject)
);
CREATE INDEX identities_user ON identities (user_id);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (9, 'oidc connectors and external identities', CAST(strftime('%s', 'now') AS INTEGER));
