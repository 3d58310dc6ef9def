//! The `portcullis` command: `serve` runs the authorization server (public and admin
//! listeners); `migrate` applies the schema; `maintenance` purges expired rows once;
//! `user`, `resource`, `client`, `audit`, `key`, `rekey`, `provider`, `connection`, `connector`,
//! `identity`, `idp` and `workload`
//! administer the database directly through the core's admin API, in-process.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args, Parser, Subcommand};
use portcullis::admin_cli::{self, Op};
use portcullis::config::{self, Settings};
use portcullis::server;

/// Portcullis: an OAuth 2.1 authorization server for MCP.
#[derive(Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    /// TOML configuration file (settings may also come from PORTCULLIS_* variables).
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the public and admin listeners until SIGTERM or Ctrl-C.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Purge expired rows and audit events past retention once, print the counts and exit
    /// (`serve` also does this every storage.purge_interval_secs).
    Maintenance {
        /// Repeat until nothing expired is left, instead of one bounded pass.
        #[arg(long)]
        until_complete: bool,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage resources (MCP servers) and their scope catalogs.
    #[command(subcommand)]
    Resource(ResourceCmd),
    /// Manage static clients.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// After a master key rotation (the old key moved to previous_master_keys): seal every
    /// signing key, upstream token and provider secret again under master_key, print the
    /// counts and exit; then the old key can be removed.
    Rekey,
    /// Manage the token vault's upstream providers.
    #[command(subcommand)]
    Provider(ProviderCmd),
    /// Manage users' connections to upstream providers.
    #[command(subcommand)]
    Connection(ConnectionCmd),
    /// Manage OIDC connectors (sign-in through an identity provider).
    #[command(subcommand)]
    Connector(ConnectorCmd),
    /// Manage external identities linked to users.
    #[command(subcommand)]
    Identity(IdentityCmd),
    /// Manage trusted enterprise IdPs (ID-JAG issuers) and their JWT bearer policies.
    #[command(subcommand)]
    Idp(IdpCmd),
    /// Manage workload identity federation: trusted workload issuers and their rules.
    #[command(subcommand)]
    Workload(WorkloadCmd),
}

#[derive(Subcommand)]
enum IdpCmd {
    /// Declare (create or replace) a trusted IdP from a JSON file (`-`: stdin), the body of
    /// `POST /admin/idps`.
    Add {
        /// The JSON declaration.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List trusted IdPs.
    List,
    /// Delete a trusted IdP with its policies and subject mappings.
    Delete {
        /// Its issuer.
        issuer: String,
    },
    /// Declare (create or replace) a JWT bearer policy, with its rules (groups, max_auth_age,
    /// acr_values), from a JSON file (`-`: stdin), the body of `POST /admin/idp-policies`.
    PolicyAdd {
        /// The JSON declaration.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List JWT bearer policies.
    Policies {
        /// Only this IdP's.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Delete a JWT bearer policy.
    PolicyDelete {
        /// Policy id.
        id: String,
    },
}

#[derive(Subcommand)]
enum WorkloadCmd {
    /// Trust a workload issuer (GitHub Actions, a Kubernetes cluster, a SPIFFE trust
    /// domain), or replace its keys and audiences.
    Trust {
        /// The issuer (`iss` of its JWTs).
        issuer: String,
        /// Where its JWK Set is (default: OpenID Connect discovery from the issuer).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// An accepted `aud` (repeatable; default: this server's token endpoint URL).
        #[arg(long = "audience")]
        audiences: Vec<String>,
    },
    /// List trusted workload issuers.
    Issuers,
    /// Stop trusting a workload issuer (its rules are removed too).
    Untrust {
        /// The issuer.
        issuer: String,
    },
    /// Let workloads whose `sub` matches a pattern get tokens for a resource as a client.
    Allow {
        /// The workload issuer.
        #[arg(long)]
        issuer: String,
        /// The subject pattern (`*` stands for any run of characters).
        #[arg(long)]
        subject: String,
        /// The resource URI.
        #[arg(long)]
        resource: String,
        /// The client the tokens are issued to.
        #[arg(long = "client")]
        client_id: String,
        /// A scope granted at most (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List workload rules.
    Rules {
        /// Only this issuer's.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Delete a workload rule.
    Forbid {
        /// Rule id.
        id: String,
    },
}

#[derive(Subcommand)]
enum ConnectorCmd {
    /// Declare (create or replace) a connector from a JSON file (`-`: stdin), the body of
    /// `POST /admin/connectors`; prints its redirect_uri to register at the IdP.
    Add {
        /// The JSON declaration.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List connectors (client secrets are never shown).
    List,
    /// Delete a connector with its identity links (the users stay).
    Delete {
        /// Connector id.
        id: String,
    },
}

#[derive(Subcommand)]
enum IdentityCmd {
    /// List external identities.
    List {
        /// Only this user's (username).
        #[arg(long)]
        user: Option<String>,
        /// Only this connector's.
        #[arg(long)]
        connector: Option<String>,
    },
    /// Unlink an identity: the next login through it is a first login again.
    Unlink {
        /// Connector id.
        connector: String,
        /// The IdP's subject.
        subject: String,
    },
}

#[derive(Subcommand)]
enum ProviderCmd {
    /// Declare (create or replace) a provider from a JSON file (`-`: stdin), the body of
    /// `POST /admin/providers`.
    Add {
        /// The JSON declaration.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// List providers (client secrets are never shown).
    List,
    /// Delete a provider with its connections.
    Delete {
        /// Provider name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ConnectionCmd {
    /// List connections (no tokens shown).
    List {
        /// Only this user's (user id).
        #[arg(long)]
        user: Option<String>,
        /// Only this provider's.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Revoke a connection; its tokens are forgotten at once.
    Revoke {
        /// Connection id.
        id: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a user. The password comes from --password, PORTCULLIS_USER_PASSWORD or stdin.
    Add {
        /// Login name.
        username: String,
        /// Password (prefer PORTCULLIS_USER_PASSWORD or stdin: arguments are visible to `ps`).
        #[arg(long, env = "PORTCULLIS_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password (from --password, PORTCULLIS_USER_PASSWORD or stdin); ends the
    /// user's sessions and revokes their grants.
    Password {
        /// Login name.
        username: String,
        /// New password (prefer PORTCULLIS_USER_PASSWORD or stdin).
        #[arg(long, env = "PORTCULLIS_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Disable a user: no sign-in, sessions end, grants revoked, tokens inactive.
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Login name.
        username: String,
    },
}

#[derive(Subcommand)]
enum ResourceCmd {
    /// Add or update a resource.
    Add {
        /// Resource URI, e.g. https://mcp.example.com/mcp.
        uri: String,
        /// A scope of its catalog (repeat for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List resources.
    List,
}

#[derive(Subcommand)]
enum ClientCmd {
    /// Add a static client; a confidential client's secret is printed once.
    Add(ClientAdd),
    /// List clients.
    List,
    /// Set a client's policy: the client_credentials grant, rate limit, daily token quota.
    Policy {
        /// Client id (or client ID metadata document URL).
        client_id: String,
        /// Allow the client_credentials grant (self-registered clients need this).
        #[arg(long)]
        client_credentials: bool,
        /// Token requests per minute (0: none; default: the server's).
        #[arg(long, value_name = "N")]
        rate_limit_per_minute: Option<i64>,
        /// Access tokens per UTC day (0: none; default: the server's).
        #[arg(long, value_name = "N")]
        daily_token_quota: Option<i64>,
    },
    /// Suspend a client: no tokens, and its tokens introspect as inactive.
    Suspend {
        /// Client id.
        client_id: String,
    },
    /// Resume a suspended client.
    Resume {
        /// Client id.
        client_id: String,
    },
}

#[derive(Args)]
#[command(group(ArgGroup::new("kind").args(["secret", "public"])))]
struct ClientAdd {
    /// Client id (random when omitted).
    #[arg(long)]
    client_id: Option<String>,
    /// Confidential client with a generated secret (client_secret_basic).
    #[arg(long)]
    secret: bool,
    /// Public client without a secret (PKCE only).
    #[arg(long)]
    public: bool,
    /// A redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A grant type (repeat for several).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Scope ceiling, space separated.
    #[arg(long)]
    scope: Option<String>,
}

#[derive(Subcommand)]
enum AuditCmd {
    /// List events, newest first.
    List {
        /// Number of events.
        #[arg(long)]
        limit: Option<u32>,
        /// Only events with this action (e.g. token.issued).
        #[arg(long)]
        action: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// List signing keys.
    List,
    /// Add a new signing key; older keys stay published until their tokens expire.
    Rotate {
        /// Publish the key in the JWKS this many seconds before it starts signing
        /// (default: the configured key_prepublish_secs).
        #[arg(long, value_name = "SECONDS")]
        prepublish_secs: Option<i64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "portcullis failed");
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = config::load(cli.config.as_deref())?;
    let op = match cli.command {
        Command::Serve => return serve(settings).await,
        Command::Migrate => return migrate(settings).await,
        Command::Maintenance { until_complete } => {
            return maintenance(settings, until_complete).await
        }
        Command::User(UserCmd::Add { username, password }) => Op::UserAdd {
            password: match password {
                Some(p) => p,
                None => read_password()?,
            },
            username,
        },
        Command::User(UserCmd::List) => Op::UserList,
        Command::User(UserCmd::Password { username, password }) => Op::UserPassword {
            password: match password {
                Some(p) => p,
                None => read_password()?,
            },
            username,
        },
        Command::User(UserCmd::Disable { username }) => Op::UserDisabled {
            username,
            disabled: true,
        },
        Command::User(UserCmd::Enable { username }) => Op::UserDisabled {
            username,
            disabled: false,
        },
        Command::Resource(ResourceCmd::Add { uri, scopes, name }) => {
            Op::ResourceAdd { uri, scopes, name }
        }
        Command::Resource(ResourceCmd::List) => Op::ResourceList,
        Command::Client(ClientCmd::Add(a)) => Op::ClientAdd {
            client_id: a.client_id,
            confidential: match (a.secret, a.public) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
            redirect_uris: a.redirect_uris,
            grant_types: a.grant_types,
            name: a.name,
            scope: a.scope,
        },
        Command::Client(ClientCmd::List) => Op::ClientList,
        Command::Client(ClientCmd::Policy {
            client_id,
            client_credentials,
            rate_limit_per_minute,
            daily_token_quota,
        }) => Op::ClientPolicy {
            client_id,
            client_credentials,
            rate_limit_per_minute,
            daily_token_quota,
        },
        Command::Client(ClientCmd::Suspend { client_id }) => Op::ClientSuspended {
            client_id,
            suspended: true,
        },
        Command::Client(ClientCmd::Resume { client_id }) => Op::ClientSuspended {
            client_id,
            suspended: false,
        },
        Command::Audit(AuditCmd::List { limit, action }) => Op::AuditList { limit, action },
        Command::Key(KeyCmd::List) => Op::KeyList,
        Command::Key(KeyCmd::Rotate { prepublish_secs }) => Op::KeyRotate { prepublish_secs },
        Command::Rekey => Op::Rekey,
        Command::Provider(ProviderCmd::Add { file }) => Op::ProviderPut {
            body: read_json(&file)?,
        },
        Command::Provider(ProviderCmd::List) => Op::ProviderList,
        Command::Provider(ProviderCmd::Delete { name }) => Op::ProviderDelete { name },
        Command::Connection(ConnectionCmd::List { user, provider }) => {
            Op::ConnectionList { user, provider }
        }
        Command::Connection(ConnectionCmd::Revoke { id }) => Op::ConnectionRevoke { id },
        Command::Connector(ConnectorCmd::Add { file }) => Op::ConnectorPut {
            body: read_json(&file)?,
        },
        Command::Connector(ConnectorCmd::List) => Op::ConnectorList,
        Command::Connector(ConnectorCmd::Delete { id }) => Op::ConnectorDelete { id },
        Command::Identity(IdentityCmd::List { user, connector }) => {
            Op::IdentityList { user, connector }
        }
        Command::Identity(IdentityCmd::Unlink { connector, subject }) => {
            Op::IdentityUnlink { connector, subject }
        }
        Command::Idp(IdpCmd::Add { file }) => Op::IdpPut {
            body: read_json(&file)?,
        },
        Command::Idp(IdpCmd::List) => Op::IdpList,
        Command::Idp(IdpCmd::Delete { issuer }) => Op::IdpDelete { issuer },
        Command::Idp(IdpCmd::PolicyAdd { file }) => Op::IdpPolicyPut {
            body: read_json(&file)?,
        },
        Command::Idp(IdpCmd::Policies { issuer }) => Op::IdpPolicyList { issuer },
        Command::Idp(IdpCmd::PolicyDelete { id }) => Op::IdpPolicyDelete { id },
        Command::Workload(WorkloadCmd::Trust {
            issuer,
            jwks_uri,
            audiences,
        }) => Op::WorkloadIssuerPut {
            issuer,
            jwks_uri,
            audiences,
        },
        Command::Workload(WorkloadCmd::Issuers) => Op::WorkloadIssuerList,
        Command::Workload(WorkloadCmd::Untrust { issuer }) => Op::WorkloadIssuerDelete { issuer },
        Command::Workload(WorkloadCmd::Allow {
            issuer,
            subject,
            resource,
            client_id,
            scopes,
        }) => Op::WorkloadRulePut {
            issuer,
            subject,
            resource,
            client_id,
            scopes,
        },
        Command::Workload(WorkloadCmd::Rules { issuer }) => Op::WorkloadRuleList { issuer },
        Command::Workload(WorkloadCmd::Forbid { id }) => Op::WorkloadRuleDelete { id },
    };
    server::init_logging(settings.host.log_format, "warn");
    let server = server::start(&settings).await?;
    let (status, value) = admin_cli::run(&server, &op).await?;
    let text = serde_json::to_string_pretty(&value)?;
    if status.is_success() {
        print_line(&text);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{text}");
        Ok(ExitCode::FAILURE)
    }
}

/// A JSON document from `path` (`-`: stdin).
fn read_json(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading stdin")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Prints to stdout; a closed pipe (`portcullis key list | head`) is not an error.
fn print_line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    server::init_logging(settings.host.log_format, "info,sqlx=warn");
    settings.check(true)?;
    let portcullis = server::start(&settings).await?;
    let public = tokio::net::TcpListener::bind(settings.host.listen)
        .await
        .with_context(|| format!("listening on {}", settings.host.listen))?;
    let admin = tokio::net::TcpListener::bind(settings.host.admin_listen)
        .await
        .with_context(|| format!("listening on {}", settings.host.admin_listen))?;
    tracing::info!(
        issuer = portcullis.issuer(),
        public = %public.local_addr()?,
        admin = %admin.local_addr()?,
        database = %server::redact_url(&settings.host.database_url),
        "portcullis listening"
    );
    server::serve(
        portcullis,
        public,
        admin,
        settings.host.trusted_proxies.clone(),
        settings.host.limits,
        server::shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn migrate(settings: Settings) -> anyhow::Result<ExitCode> {
    server::init_logging(settings.host.log_format, "warn");
    let store = portcullis::store::open(&settings.host.database_url)
        .await
        .with_context(|| {
            format!(
                "database {}",
                server::redact_url(&settings.host.database_url)
            )
        })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let version = portcullis_core::store::migrations::migrate(store.as_ref(), now).await?;
    print_line(&serde_json::json!({ "schema_version": version }).to_string());
    Ok(ExitCode::SUCCESS)
}

async fn maintenance(settings: Settings, until_complete: bool) -> anyhow::Result<ExitCode> {
    server::init_logging(settings.host.log_format, "warn");
    let server = server::start(&settings).await?;
    let mut total = portcullis_core::maintenance::run(&server).await?;
    let mut passes = 1;
    while until_complete && !total.complete {
        let next = portcullis_core::maintenance::run(&server).await?;
        for (table, n) in next.deleted {
            *total.deleted.entry(table).or_default() += n;
        }
        total.complete = next.complete;
        passes += 1;
    }
    print_line(&serde_json::to_string_pretty(&serde_json::json!({
        "deleted": total.deleted,
        "complete": total.complete,
        "passes": passes,
    }))?);
    Ok(ExitCode::SUCCESS)
}

/// Reads a password from stdin (one line), prompting when stdin is a terminal.
fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password: ");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password given (use --password, PORTCULLIS_USER_PASSWORD or stdin)");
    }
    Ok(password)
}
