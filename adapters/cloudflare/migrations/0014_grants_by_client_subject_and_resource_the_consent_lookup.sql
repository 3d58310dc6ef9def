-- Migration 14 of core/src/store/migrations.rs (grants by client, subject and resource (the consent lookup)).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
CREATE INDEX grants_client_subject ON grants (client_id, subject, resource);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (14, 'grants by client, subject and resource (the consent lookup)', CAST(strftime('%s', 'now') AS INTEGER));
