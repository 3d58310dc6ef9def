-- Migration 12 of core/src/store/migrations.rs (workload identity federation issuers and rules, the agent of on-behalf-of grants).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE grants ADD COLUMN actor TEXT;
CREATE TABLE workload_issuers (
  issuer TEXT PRIMARY KEY,
  jwks_uri TEXT,
  jwks TEXT,
  audiences TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE workload_rules (
  id TEXT PRIMARY KEY,
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  resource TEXT NOT NULL,
  client_id TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX workload_rules_key ON workload_rules (issuer, subject, resource);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (12, 'workload identity federation issuers and rules, the agent of on-behalf-of grants', CAST(strftime('%s', 'now') AS INTEGER));
