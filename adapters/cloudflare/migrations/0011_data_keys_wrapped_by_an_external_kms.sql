-- Migration 11 of core/src/store/migrations.rs (data keys wrapped by an external kms).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE TABLE kms_data_keys (
  id TEXT PRIMARY KEY,
  kms_key TEXT NOT NULL,
  wrapped TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX kms_data_keys_key ON kms_data_keys (kms_key, created_at);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (11, 'data keys wrapped by an external kms', CAST(strftime('%s', 'now') AS INTEGER));
