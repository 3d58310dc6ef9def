-- Migration 13 of core/src/store/migrations.rs (refresh token successor: rotation as one transaction (F7)).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE refresh_tokens ADD COLUMN successor TEXT;
INSERT INTO schema_migrations (version, name, applied_at) VALUES (13, 'refresh token successor: rotation as one transaction (F7)', CAST(strftime('%s', 'now') AS INTEGER));
