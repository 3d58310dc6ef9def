-- Migration 2 of core/src/store/migrations.rs (sender-constrained tokens, delegation, enterprise IdPs, key pre-publication).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE access_tokens ADD COLUMN parent_jti TEXT;
CREATE INDEX access_tokens_parent ON access_tokens (parent_jti);
ALTER TABLE resources ADD COLUMN exchange_clients TEXT NOT NULL DEFAULT '';
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE replay_cache (
  key TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
CREATE INDEX replay_cache_expiry ON replay_cache (expires_at);
CREATE TABLE trusted_idps (
  issuer TEXT PRIMARY KEY,
  jwks_uri TEXT,
  jwks TEXT,
  allowed_audiences TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE idp_subjects (
  issuer TEXT NOT NULL,
  external_subject TEXT NOT NULL,
  subject TEXT NOT NULL,
  PRIMARY KEY (issuer, external_subject)
);
CREATE TABLE idp_policies (
  id TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  client_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (2, 'sender-constrained tokens, delegation, enterprise IdPs, key pre-publication', CAST(strftime('%s', 'now') AS INTEGER));
