-- Migration 6 of core/src/store/migrations.rs (trace ids in audit events).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE audit_events ADD COLUMN trace_id TEXT;
CREATE INDEX audit_events_trace ON audit_events (trace_id);
INSERT INTO schema_migrations (version, name, applied_at) VALUES (6, 'trace ids in audit events', CAST(strftime('%s', 'now') AS INTEGER));
