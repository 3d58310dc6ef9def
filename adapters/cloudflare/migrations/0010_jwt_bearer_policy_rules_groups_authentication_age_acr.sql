-- Migration 10 of core/src/store/migrations.rs (jwt bearer policy rules: groups, authentication age, acr).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE idp_policies ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
INSERT INTO schema_migrations (version, name, applied_at) VALUES (10, 'jwt bearer policy rules: groups, authentication age, acr', CAST(strftime('%s', 'now') AS INTEGER));
