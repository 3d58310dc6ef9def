//! Versioned schema migrations, applied on start by every host. Written once in SQLite's
//! dialect; [`ddl`] adapts the handful of type names for PostgreSQL.
//!
//! Only hashes of codes, tokens, secrets and session ids are stored (SECURITY-CHECKLIST C6, A4).

use super::{Dialect, SqlStore, StoreError, Value};

/// One schema version: statements separated by `;`.
pub struct Migration {
    /// Monotonic version number.
    pub version: i64,
    /// What the migration does.
    pub name: &'static str,
    /// SQLite-dialect DDL.
    pub sql: &'static str,
}

/// Every migration, oldest first. Never edit a released one; add a new version.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema",
        sql: r#"
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL
);
CREATE TABLE resources (
  uri TEXT PRIMARY KEY,
  name TEXT,
  scopes TEXT NOT NULL,
  introspection_clients TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE clients (
  client_id TEXT PRIMARY KEY,
  secret_hash TEXT,
  metadata TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE grants (
  id TEXT PRIMARY KEY,
  client_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  scope TEXT NOT NULL,
  resource TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE auth_codes (
  code_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  redirect_uri TEXT NOT NULL,
  subject TEXT NOT NULL,
  scope TEXT NOT NULL,
  resource TEXT,
  code_challenge TEXT,
  code_challenge_method TEXT,
  auth_time INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  grant_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  scope TEXT NOT NULL,
  resource TEXT,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE TABLE access_tokens (
  jti TEXT PRIMARY KEY,
  grant_id TEXT,
  client_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX access_tokens_grant ON access_tokens (grant_id);
CREATE TABLE sessions (
  id_hash TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  auth_time INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE auth_requests (
  id_hash TEXT PRIMARY KEY,
  request TEXT NOT NULL,
  session_hash TEXT,
  expires_at INTEGER NOT NULL,
  consumed_at INTEGER,
  created_at INTEGER NOT NULL
);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY,
  alg TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_enc TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  retired_at INTEGER,
  remove_after INTEGER
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  action TEXT NOT NULL,
  outcome TEXT NOT NULL,
  client_id TEXT,
  subject TEXT,
  reason TEXT,
  request_id TEXT,
  detail TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
"#,
    },
    Migration {
        version: 2,
        name: "sender-constrained tokens, delegation, enterprise IdPs, key pre-publication",
        sql: r#"
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
"#,
    },
    Migration {
        version: 3,
        name: "client policies (machine grant, limits, suspension), counters, redirect_uri sent at authorize",
        sql: r#"
CREATE TABLE client_policies (
  client_id TEXT PRIMARY KEY,
  client_credentials INTEGER NOT NULL DEFAULT 0,
  rate_limit_per_minute INTEGER,
  daily_token_quota INTEGER,
  suspended_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE TABLE counters (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX counters_expiry ON counters (expires_at);
ALTER TABLE auth_codes ADD COLUMN redirect_uri_sent INTEGER NOT NULL DEFAULT 1;
"#,
    },
    Migration {
        version: 4,
        name: "bounded storage: pending-request owners, expiry indexes for the purge",
        sql: r#"
ALTER TABLE auth_requests ADD COLUMN client_id TEXT;
ALTER TABLE auth_requests ADD COLUMN ip_bucket TEXT;
CREATE INDEX auth_requests_client ON auth_requests (client_id, expires_at);
CREATE INDEX auth_requests_ip ON auth_requests (ip_bucket, expires_at);
CREATE INDEX auth_requests_expiry ON auth_requests (expires_at);
CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
"#,
    },
    Migration {
        version: 5,
        name: "token vault: upstream providers, connections (sealed tokens, single-flight refresh claim), pending connects",
        sql: r#"
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
"#,
    },
    Migration {
        version: 6,
        name: "trace ids in audit events",
        sql: r#"
ALTER TABLE audit_events ADD COLUMN trace_id TEXT;
CREATE INDEX audit_events_trace ON audit_events (trace_id);
"#,
    },
    Migration {
        version: 7,
        name: "metric counters folded from the audit log",
        sql: r#"
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
"#,
    },
    Migration {
        version: 8,
        name: "client last use (coarse), indexes for grant, session and token lookups by subject and client",
        sql: r#"
ALTER TABLE clients ADD COLUMN last_used_at INTEGER;
CREATE INDEX grants_subject ON grants (subject, created_at);
CREATE INDEX grants_client ON grants (client_id, created_at);
CREATE INDEX sessions_subject ON sessions (subject);
CREATE INDEX access_tokens_client ON access_tokens (client_id, expires_at);
"#,
    },
    Migration {
        version: 9,
        name: "oidc connectors and external identities",
        sql: r#"
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
"#,
    },
    Migration {
        version: 10,
        name: "jwt bearer policy rules: groups, authentication age, acr",
        sql: r#"
ALTER TABLE idp_policies ADD COLUMN rules TEXT NOT NULL DEFAULT '[]';
"#,
    },
    Migration {
        version: 11,
        name: "data keys wrapped by an external kms",
        sql: r#"
CREATE TABLE kms_data_keys (
  id TEXT PRIMARY KEY,
  kms_key TEXT NOT NULL,
  wrapped TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX kms_data_keys_key ON kms_data_keys (kms_key, created_at);
"#,
    },
    Migration {
        version: 12,
        name: "workload identity federation issuers and rules, the agent of on-behalf-of grants",
        sql: r#"
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
"#,
    },
    Migration {
        version: 13,
        name: "refresh token successor: rotation as one transaction (F7)",
        sql: r#"
ALTER TABLE refresh_tokens ADD COLUMN successor TEXT;
"#,
    },
    Migration {
        version: 14,
        name: "grants by client, subject and resource (the consent lookup)",
        sql: r#"
CREATE INDEX grants_client_subject ON grants (client_id, subject, resource);
"#,
    },
];

/// Adapts SQLite DDL to `dialect`.
pub fn ddl(dialect: Dialect, sql: &str) -> String {
    match dialect {
        Dialect::Sqlite => sql.to_owned(),
        Dialect::Postgres => sql
            .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            .replace("INTEGER", "BIGINT"),
    }
}

/// The version ledger: one row per applied migration (SQLite dialect; [`ddl`] adapts it).
pub const LEDGER_DDL: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)";

/// Applies every migration newer than the stored version. Safe to run from several
/// instances at once: on PostgreSQL each migration transaction first takes a
/// transaction-scoped advisory lock, so concurrent starts apply it one after the other (DDL
/// there is not safe to race); on SQLite-family stores a batch is one write transaction. A
/// losing concurrent run sees the version recorded and carries on.
///
/// The version ledger is [`LEDGER_DDL`]; tools that apply migrations themselves (wrangler's
/// D1 migration files) create it with the same statement.
pub async fn migrate(store: &dyn SqlStore, now: i64) -> Result<i64, StoreError> {
    let dialect = store.dialect();
    let locked = |mut statements: Vec<(String, Vec<Value>)>| {
        if dialect == Dialect::Postgres {
            statements.insert(0, (POSTGRES_MIGRATION_LOCK.into(), Vec::new()));
        }
        statements
    };
    store
        .batch(&locked(vec![(ddl(dialect, LEDGER_DDL), Vec::new())]))
        .await?;
    // Every migration not in the ledger, not only those above its highest version: a
    // version merged later with a lower number (branches numbered 3 and 4) still applies.
    let applied = applied_versions(store).await?;
    let mut current = current_version(store).await?;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let mut statements: Vec<(String, Vec<Value>)> = ddl(dialect, m.sql)
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_owned(), Vec::new()))
            .collect();
        statements.push((
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)".into(),
            vec![m.version.into(), m.name.into(), now.into()],
        ));
        match store.batch(&locked(statements)).await {
            Ok(_) => current = current.max(m.version),
            Err(e) => {
                // Another instance applied it first (it held the lock while we waited).
                if applied_versions(store).await?.contains(&m.version) {
                    current = current.max(m.version);
                } else {
                    return Err(e);
                }
            }
        }
    }
    Ok(current)
}

/// Serializes migration transactions across PostgreSQL instances; released at commit.
const POSTGRES_MIGRATION_LOCK: &str = "SELECT pg_advisory_xact_lock(7430002)";

/// Every applied schema version.
pub async fn applied_versions(store: &dyn SqlStore) -> Result<Vec<i64>, StoreError> {
    store
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.int(0))
        .collect()
}

/// The highest applied schema version (0 when none).
pub async fn current_version(store: &dyn SqlStore) -> Result<i64, StoreError> {
    let rows = store
        .query("SELECT MAX(version) FROM schema_migrations", &[])
        .await?;
    Ok(rows
        .first()
        .and_then(|r| r.opt_int(0).ok().flatten())
        .unwrap_or(0))
}

/// The file name of migration `version` for `wrangler d1 migrations`: `NNNN_words_of_the_name.sql`
/// (the files in `adapters/cloudflare/migrations/` are generated from [`MIGRATIONS`]).
pub fn d1_file_name(version: i64, name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('_') {
            slug.push('_');
        }
    }
    format!("{version:04}_{}.sql", slug.trim_end_matches('_'))
}

/// Statements that record, in wrangler's `d1_migrations` ledger (the schema wrangler creates),
/// every migration file whose version the core has applied, so a later `wrangler d1
/// migrations apply` does not run DDL again that the core already ran. Idempotent; for D1.
pub fn wrangler_ledger_statements() -> Vec<(String, Vec<Value>)> {
    let mut statements = vec![(
        "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)".to_owned(),
        Vec::new(),
    )];
    for m in MIGRATIONS {
        statements.push((
            "INSERT OR IGNORE INTO d1_migrations (name) SELECT ? WHERE EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)".to_owned(),
            vec![Value::from(d1_file_name(m.version, m.name)), Value::Int(m.version)],
        ));
    }
    statements
}
