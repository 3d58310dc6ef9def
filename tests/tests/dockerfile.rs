//! Keeps the `Dockerfile`, `compose.yaml` and `.dockerignore` honest without a Docker engine:
//! checks every fact they rely on against the workspace and the native host itself. The
//! binary the builder stage copies is the one `cargo build --release -p portcullis` produces
//! (from `cargo metadata`); the image's `ENV` defaults and the compose file's environment are
//! accepted by the native host's configuration loader (`portcullis::config::load_from`) and
//! listen on the exposed ports; the healthcheck command, run by `sh` exactly as written,
//! succeeds against a running `portcullis serve`; the final stage runs as a non-root user.
//! `scripts/test-image` also builds the image with podman and runs it (`image.rs`), but with
//! the release binary in place of the builder stage: the builder's facts are checked only here.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    portcullis_tests::repo_root()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuation lines
/// joined.
#[derive(Debug, Clone)]
struct Instr {
    op: String,
    args: String,
}

/// The stages of a Dockerfile, each a list of instructions starting with its `FROM`.
fn stages(text: &str) -> Vec<Vec<Instr>> {
    let mut logical = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        match t.strip_suffix('\\') {
            Some(part) => {
                cur.push_str(part.trim());
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                logical.push(std::mem::take(&mut cur));
            }
        }
    }
    assert!(
        cur.is_empty(),
        "the Dockerfile ends inside a continued line"
    );
    let mut out: Vec<Vec<Instr>> = Vec::new();
    for l in logical {
        let (op, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let instr = Instr {
            op: op.to_ascii_uppercase(),
            args: args.trim().to_owned(),
        };
        if instr.op == "FROM" {
            out.push(vec![instr]);
        } else {
            out.last_mut()
                .expect("the Dockerfile starts with FROM")
                .push(instr);
        }
    }
    out
}

fn all<'a>(stage: &'a [Instr], op: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|i| i.op == op)
        .map(|i| i.args.as_str())
        .collect()
}

fn last<'a>(stage: &'a [Instr], op: &str) -> &'a str {
    all(stage, op)
        .pop()
        .unwrap_or_else(|| panic!("the stage has a {op} instruction"))
}

/// `KEY=VALUE` pairs of every `ENV` of a stage (unquoted values, as written here).
fn env_of(stage: &[Instr]) -> BTreeMap<String, String> {
    all(stage, "ENV")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV uses KEY=VALUE: {kv}"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect()
}

fn json_array(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("exec form (JSON array): {args}: {e}"))
}

/// The binary targets of package `package`, from `cargo metadata`.
fn bin_targets(package: &str) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata JSON");
    let pkg = meta["packages"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == package))
        .unwrap_or_else(|| panic!("package {package} is in the workspace"));
    pkg["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.contains(&"bin".into()))
        })
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

fn dockerfile() -> (Vec<Instr>, Vec<Instr>) {
    let s = stages(&read("Dockerfile"));
    assert_eq!(s.len(), 2, "a builder stage and a runtime stage");
    (s[0].clone(), s[1].clone())
}

/// The package the builder builds and the path of the binary it produces, as the runtime
/// stage copies it.
#[test]
fn builder_binary_is_what_cargo_build_release_produces() {
    let (builder, runtime) = dockerfile();
    assert_eq!(builder[0].args, "rust:1-bookworm AS builder");
    let build = all(&builder, "RUN")
        .into_iter()
        .find(|r| r.contains("cargo build"))
        .expect("the builder runs cargo build");
    assert_eq!(
        build, "cargo build --release -p portcullis --locked",
        "the build command CI runs (scripts/test) and the README names"
    );
    for i in &builder {
        assert!(
            !i.args.contains("CARGO_TARGET_DIR") && !i.args.contains("--target-dir"),
            "the builder uses the default target directory: {i:?}"
        );
    }
    let workdir = last(&builder, "WORKDIR");
    assert_eq!(
        last(&builder, "COPY"),
        ". .",
        "the whole context is the workspace"
    );

    let copy = all(&runtime, "COPY")
        .into_iter()
        .find(|c| c.starts_with("--from=builder "))
        .expect("the runtime copies from the builder");
    let parts: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "COPY --from=builder <src> <dest>: {copy}");
    let (src, dest) = (parts[1], parts[2]);
    let bins = bin_targets("portcullis");
    let exe = src
        .strip_prefix(&format!("{workdir}/target/release/"))
        .unwrap_or_else(|| panic!("{src} is in {workdir}/target/release"));
    assert!(
        bins.iter().any(|b| b == exe),
        "{exe} is a binary of package portcullis: {bins:?}"
    );
    assert_eq!(dest, format!("/usr/local/bin/{exe}"), "on the default PATH");
    let entrypoint = json_array(last(&runtime, "ENTRYPOINT"));
    assert_eq!(entrypoint, vec![exe.to_owned()]);
}

/// `CMD ["serve"]` is a subcommand of the binary.
#[test]
fn cmd_is_a_subcommand() {
    let (_, runtime) = dockerfile();
    let cmd = json_array(last(&runtime, "CMD"));
    assert_eq!(cmd, vec!["serve".to_owned()]);
    let out = Command::new(common::binary())
        .args(&cmd)
        .arg("--help")
        .output()
        .expect("running portcullis");
    assert!(
        out.status.success(),
        "portcullis {cmd:?} --help: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn load(env: &BTreeMap<String, String>) -> portcullis::config::Settings {
    let pairs: Vec<(String, String)> = env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    portcullis::config::load_from(None, &pairs)
        .unwrap_or_else(|e| panic!("the native host accepts {env:?}: {e:#}"))
}

/// The image's `ENV` defaults are settings the host accepts; they listen on all interfaces on
/// exactly the exposed ports and keep SQLite in the volume the image creates for the user.
#[test]
fn env_defaults_match_exposed_ports_and_volume() {
    let (_, runtime) = dockerfile();
    assert_eq!(runtime[0].args, "debian:bookworm-slim");
    let env = env_of(&runtime);
    let s = load(&env);
    let listen: SocketAddr = "0.0.0.0:9000".parse().unwrap();
    let admin: SocketAddr = "0.0.0.0:9001".parse().unwrap();
    assert_eq!(s.host.listen, listen);
    assert_eq!(s.host.admin_listen, admin);
    let exposed: Vec<u16> = all(&runtime, "EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| p.parse().expect("EXPOSE <port>"))
        .collect();
    assert_eq!(exposed, vec![listen.port(), admin.port()]);

    let volume = json_array(last(&runtime, "VOLUME"));
    assert_eq!(volume, vec!["/var/lib/portcullis".to_owned()]);
    let db = s
        .host
        .database_url
        .strip_prefix("sqlite://")
        .expect("SQLite by default");
    assert_eq!(
        Path::new(db).parent(),
        Some(Path::new(&volume[0])),
        "the database lives in the volume"
    );
    assert_eq!(last(&runtime, "WORKDIR"), volume[0]);
    let setup = all(&runtime, "RUN").join(" ");
    assert!(
        setup.contains(&format!("chown portcullis:portcullis {}", volume[0])),
        "the volume directory belongs to the runtime user"
    );

    // Without an issuer the defaults do not start (http on 0.0.0.0 is not a loopback issuer):
    // a container never publishes a made-up issuer.
    let err = s
        .core
        .validate()
        .expect_err("the image needs PORTCULLIS_ISSUER");
    assert_eq!(err.setting, "issuer");
}

/// The final stage runs as the system user it creates, never as root.
#[test]
fn runs_as_non_root_user() {
    let (_, runtime) = dockerfile();
    let user = last(&runtime, "USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        !["root", "0"].contains(&uid),
        "the image must not run as root: USER {user}"
    );
    let setup = all(&runtime, "RUN").join(" ");
    assert!(
        setup.contains(&format!("useradd --system --uid {uid} ")),
        "USER {user} is the user created in the image"
    );
    let gid = user.split(':').nth(1).unwrap_or(uid);
    assert!(setup.contains(&format!("groupadd --system --gid {gid} ")));
}

/// The healthcheck asks `/health` on the public listener's port; run by `sh` as written
/// (with `PORTCULLIS_LISTEN` as the image sets it, pointed at a live server), it succeeds, and
/// it fails when nothing answers. curl, which it uses, is installed in the image.
#[tokio::test]
async fn healthcheck_hits_health_on_the_public_port() {
    let (_, runtime) = dockerfile();
    let hc = last(&runtime, "HEALTHCHECK");
    let script = hc
        .split_once(" CMD ")
        .map(|(_, c)| c.trim())
        .expect("HEALTHCHECK … CMD <command>");
    assert!(
        script.starts_with("curl "),
        "the healthcheck uses curl: {script}"
    );
    let setup = all(&runtime, "RUN").join(" ");
    assert!(
        setup.contains("apt-get install -y --no-install-recommends ca-certificates curl"),
        "curl and CA certificates are installed in the runtime stage"
    );
    let env = env_of(&runtime);
    let listen = &env["PORTCULLIS_LISTEN"];
    let quoted = script
        .split('"')
        .nth(1)
        .expect("the URL is double-quoted in the healthcheck");
    let url_in = |listen: &str| {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("echo \"{quoted}\""))
            .env("PORTCULLIS_LISTEN", listen)
            .output()
            .expect("sh");
        url::Url::parse(String::from_utf8_lossy(&out.stdout).trim()).expect("a URL")
    };
    let u = url_in(listen);
    assert_eq!(u.path(), "/health");
    assert_eq!(u.host_str(), Some("127.0.0.1"));
    assert_eq!(u.port(), Some(9000), "the public port of {listen}");

    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed here: the healthcheck command itself is not run");
        return;
    }
    let (dir, _cleanup) = common::temp_dir("hc");
    let db = format!("sqlite://{}", dir.join("hc.db").display());
    let server = common::start_retrying(|| common::Spec::new(&db)).await;
    let run = |listen: String| {
        let script = script.to_owned();
        tokio::task::spawn_blocking(move || {
            Command::new("timeout")
                .args(["20", "sh", "-c", &script])
                .env("PORTCULLIS_LISTEN", listen)
                .status()
                .expect("sh")
        })
    };
    let ok = run(format!("0.0.0.0:{}", server.spec.port)).await.unwrap();
    assert!(
        ok.success(),
        "the healthcheck passes on a live server: {}",
        server.log_text()
    );
    let down = run(format!("0.0.0.0:{}", common::free_port()))
        .await
        .unwrap();
    assert!(
        !down.success(),
        "the healthcheck fails when nothing answers"
    );
}

/// `.dockerignore` keeps the build context small without dropping anything the build needs.
#[test]
fn dockerignore_keeps_the_workspace() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "core",
        "adapters",
        "adapters/native",
        "tests",
    ] {
        assert!(
            !patterns
                .iter()
                .any(|p| p == needed || p == &format!("{needed}/")),
            ".dockerignore must not exclude {needed}"
        );
    }
    for heavy in ["target", ".git", "**/node_modules"] {
        assert!(
            patterns.iter().any(|p| p == heavy),
            ".dockerignore excludes {heavy}"
        );
    }
}

/// The `environment:` entries of a compose service, with `${VAR:-default}` resolved to the
/// default and `${VAR:?message}` / `${VAR}` to a stand-in value.
fn compose_env(text: &str, service: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut in_service = false;
    let mut in_env = false;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if indent == 2 {
            in_service = t == format!("{service}:");
            in_env = false;
        } else if in_service && indent == 4 {
            in_env = t == "environment:";
        } else if in_service && in_env && indent == 6 {
            let (k, v) = t.split_once(':').expect("KEY: value");
            out.insert(k.trim().to_owned(), interpolate(v.trim()));
        }
    }
    out
}

fn interpolate(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closing brace") + i;
        let inner = &rest[i + 2..end];
        if let Some((_, default)) = inner.split_once(":-") {
            out.push_str(default);
        } else {
            out.push_str("stand-in-value-0123456789abcdef");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The compose file's environment, over the image's defaults, is a valid configuration for a
/// PostgreSQL deployment reaching the `db` service (postgres:16); the admin port is published
/// on the host's loopback only.
#[test]
fn compose_configures_postgres_and_keeps_admin_private() {
    let text = read("compose.yaml");
    let (_, runtime) = dockerfile();
    let mut env = env_of(&runtime);
    env.extend(compose_env(&text, "portcullis"));
    let s = load(&env);
    s.core
        .validate()
        .unwrap_or_else(|e| panic!("the compose configuration is valid: {e}"));
    let db = url::Url::parse(&s.host.database_url).expect("a database URL");
    assert_eq!(db.scheme(), "postgres");
    assert_eq!(db.host_str(), Some("db"), "the compose service name");
    assert_eq!(db.port(), Some(5432));
    let pg = compose_env(&text, "db");
    assert_eq!(db.username(), pg["POSTGRES_USER"]);
    assert_eq!(db.password(), Some(pg["POSTGRES_PASSWORD"].as_str()));
    assert_eq!(db.path(), format!("/{}", pg["POSTGRES_DB"]));
    assert!(text.contains("    image: postgres:16\n"));
    assert!(
        text.contains("      - \"9000:9000\"\n")
            && text.contains("      - \"127.0.0.1:9001:9001\"\n")
            && !text.contains("      - \"9001:9001\""),
        "public port published, admin port on the host's loopback only"
    );
    for key in ["PORTCULLIS_ADMIN_API_KEY", "PORTCULLIS_MASTER_KEY"] {
        assert!(
            text.contains(&format!("{key}: ${{{key}:?")),
            "{key} is required from the environment, never a default"
        );
    }
}
