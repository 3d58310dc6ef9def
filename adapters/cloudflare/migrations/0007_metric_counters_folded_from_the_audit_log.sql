-- Migration 7 of core/src/store/migrations.rs (metric counters folded from the audit log).
-- Generated: edit the core and run
--   PORTCULLIS_WRITE_D1_MIGRATIONS=1 cargo test -p portcullis-tests --test worker d1_migrations
CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);
ALTER TABLE audit_events ADD COLUMN label TEXT;
CREATE TABLE metric_counters (
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  label TEXT NOT NULL,
  value INTEGER NOT NULL,
  PRIMARY KEY (action, outcome, reason, label)
);
CREATE TABLE metric_fold (
  id INTEGER PRIMARY KEY,
  folded_seq INTEGER NOT NULL,
  fold_id TEXT NOT NULL
);
INSERT INTO metric_fold (id, folded_seq, fold_id) VALUES (1, 0, '');
INSERT INTO schema_migrations (version, name, applied_at) VALUES (7, 'metric counters folded from the audit log', CAST(strftime('%s', 'now') AS INTEGER));
