//! `portcullis-spin-host`: a Spin-compatible host for tests and local runs. It serves one
//! Spin HTTP component (`wasi:http/handler@0.3.0`, spin-sdk 7) on a loopback port the way Spin
//! 4 does: a new store and instance per request, the `spin-*` request headers, Spin SQLite
//! (`spin:sqlite@3.1.0`), key-value (`spin:key-value@3.0.0`), variables
//! (`spin:variables@3.0.0`) and outbound HTTP denied unless allowed. The real `spin` CLI
//! cannot be installed here (RUNTIMES.md); what this host does not check is listed in
//! docs/spin.md.

mod apis;
mod outbound;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use outbound::{Outbound, Rule};

/// Largest request body accepted (Spin itself has no fixed limit; the component has its own).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// A request that runs longer than this is answered 500 and its instance dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const USAGE: &str = "\
usage: portcullis-spin-host --component FILE.wasm [options]

  --listen ADDR           where to listen (default 127.0.0.1:0; the bound address is printed
                          as `listening on http://ADDR` on stdout)
  --sqlite FILE           the file of the `default` Spin SQLite database
                          (default .spin/sqlite_db.db, as `spin up`)
  --var NAME=VALUE        a Spin application variable (repeatable); SPIN_VARIABLE_<NAME> in
                          the environment works too, as with Spin's environment provider
  --allow-outbound RULE   allow outbound HTTP to scheme://host:port (repeatable; `*` for the
                          host or port); everything else is denied
  --exit-on-stdin-eof     exit when standard input closes (test harnesses)
  --log                   one line per request on stderr (status, instantiate and handle time)
  --no-cache              compile the component afresh instead of using FILE.wasm.<hash>.cwasm
";

/// Per-request store data.
pub struct Ctx {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Outbound,
    shared: Arc<apis::Shared>,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

/// Command-line options.
#[derive(Debug)]
struct Options {
    component: PathBuf,
    listen: SocketAddr,
    sqlite: PathBuf,
    variables: HashMap<String, String>,
    outbound: Vec<Rule>,
    exit_on_stdin_eof: bool,
    log: bool,
    cache: bool,
}

fn parse_args(args: impl Iterator<Item = String>) -> anyhow::Result<Options> {
    let mut component = None;
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut sqlite = PathBuf::from(".spin/sqlite_db.db");
    let mut variables = HashMap::new();
    let mut outbound = Vec::new();
    let mut exit_on_stdin_eof = false;
    let mut log = false;
    let mut cache = true;
    // Spin's environment variable provider: SPIN_VARIABLE_FOO_BAR sets foo_bar.
    for (k, v) in std::env::vars() {
        if let Some(name) = k.strip_prefix("SPIN_VARIABLE_") {
            variables.insert(name.to_ascii_lowercase(), v);
        }
    }
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let mut value = |what: &str| {
            args.next()
                .with_context(|| format!("{arg} needs {what}\n{USAGE}"))
        };
        match arg.as_str() {
            "--component" => component = Some(PathBuf::from(value("a file")?)),
            "--listen" => {
                let v = value("an address")?;
                listen = v.parse().with_context(|| format!("--listen {v}"))?;
            }
            "--sqlite" => sqlite = PathBuf::from(value("a file")?),
            "--var" => {
                let v = value("NAME=VALUE")?;
                let (name, val) = v
                    .split_once('=')
                    .with_context(|| format!("--var {v}: expected NAME=VALUE"))?;
                apis::valid_variable_name(name)
                    .map_err(|why| anyhow::anyhow!("--var {name}: {why}"))?;
                variables.insert(name.to_owned(), val.to_owned());
            }
            "--allow-outbound" => {
                let v = value("a rule")?;
                outbound.push(Rule::parse(&v).map_err(anyhow::Error::msg)?);
            }
            "--exit-on-stdin-eof" => exit_on_stdin_eof = true,
            "--log" => log = true,
            "--no-cache" => cache = false,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let component = component.with_context(|| format!("--component is required\n{USAGE}"))?;
    Ok(Options {
        component,
        listen,
        sqlite,
        variables,
        outbound,
        exit_on_stdin_eof,
        log,
        cache,
    })
}

/// The compiled component, from a cache file next to it when one matches its bytes.
fn load_component(engine: &Engine, path: &Path, use_cache: bool) -> anyhow::Result<Component> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !use_cache {
        return Ok(Component::new(engine, &bytes)?);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    "wasmtime-48.0.8".hash(&mut h);
    let cached = path.with_extension(format!("{:016x}.cwasm", h.finish()));
    if cached.exists() {
        // SAFETY: the file was written by `precompile_component` of this same binary (its
        // name carries the hash of the component and of the host version), and wasmtime
        // checks the engine configuration recorded in it.
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(c) => return Ok(c),
            Err(e) => eprintln!("spin-host: ignoring cache {}: {e}", cached.display()),
        }
    }
    let compiled = engine.precompile_component(&bytes)?;
    // Written under a unique name and renamed, so concurrent hosts never read a partial file.
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, &compiled).is_ok() && std::fs::rename(&tmp, &cached).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    remove_stale_caches(path, &cached);
    // SAFETY: the bytes come from `precompile_component` on this engine just above.
    Ok(unsafe { Component::deserialize(engine, &compiled) }?)
}

/// Removes the caches of earlier builds of the component (`<stem>.<hash>.cwasm` but `keep`).
fn remove_stale_caches(component: &Path, keep: &Path) {
    let (Some(dir), Some(stem)) = (component.parent(), component.file_stem()) else {
        return;
    };
    let prefix = format!("{}.", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if p != keep && name.starts_with(&prefix) && name.ends_with(".cwasm") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Everything a request needs.
struct App {
    engine: Engine,
    pre: ServicePre<Ctx>,
    shared: Arc<apis::Shared>,
    outbound: Arc<Vec<Rule>>,
    log: bool,
}

impl App {
    fn store(&self) -> Store<Ctx> {
        let wasi = WasiCtxBuilder::new()
            .inherit_stdout()
            .inherit_stderr()
            .build();
        Store::new(
            &self.engine,
            Ctx {
                table: ResourceTable::new(),
                wasi,
                http: WasiHttpCtx::new(),
                hooks: Outbound::new(self.outbound.clone()),
                shared: self.shared.clone(),
            },
        )
    }

    /// Runs one request in a fresh instance; returns the response and the time spent
    /// instantiating.
    async fn call(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<(http::Response<Full<Bytes>>, Duration)> {
        let mut store = self.store();
        let started = Instant::now();
        let service = self.pre.instantiate_async(&mut store).await?;
        let instantiate = started.elapsed();
        let mut hooks = Outbound::new(self.outbound.clone());
        let (request, io) = wasmtime_wasi_http::p3::Request::from_http(&mut hooks, req);
        let (parts, body) = store
            .run_concurrent(async |accessor| {
                let respond = async {
                    let resp = service
                        .handle(accessor, request)
                        .await?
                        .map_err(|e| anyhow::anyhow!("the component failed: {e:?}"))?;
                    let resp = accessor.with(|access| resp.into_http(access, async { Ok(()) }))?;
                    let (parts, body) = resp.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|e| anyhow::anyhow!("response body: {e:?}"))?
                        .to_bytes();
                    anyhow::Ok((parts, body))
                };
                let (out, ()) = tokio::try_join!(respond, async {
                    io.await.map_err(|e| anyhow::anyhow!("request body: {e:?}"))
                })?;
                anyhow::Ok(out)
            })
            .await??;
        Ok((
            http::Response::from_parts(parts, Full::new(body)),
            instantiate,
        ))
    }
}

fn plain(status: http::StatusCode, text: String) -> http::Response<Full<Bytes>> {
    let mut resp = http::Response::new(Full::new(Bytes::from(text)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Maps a hyper request to what Spin hands its component: the full body and the `spin-*`
/// headers (set by the host, replacing any the client sent).
async fn spin_request(
    req: http::Request<hyper::body::Incoming>,
    local: SocketAddr,
    peer: SocketAddr,
) -> Result<http::Request<Full<Bytes>>, http::Response<Full<Bytes>>> {
    let (mut parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| plain(http::StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")))?
        .to_bytes();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map_or_else(|| local.to_string(), str::to_owned);
    let full_url = format!("http://{host}{path_and_query}");
    parts.uri = full_url.parse().map_err(|e| {
        plain(
            http::StatusCode::BAD_REQUEST,
            format!("bad request URI: {e}\n"),
        )
    })?;
    let path = parts.uri.path().to_owned();
    let h = &mut parts.headers;
    for name in [
        "spin-full-url",
        "spin-path-info",
        "spin-matched-route",
        "spin-base-path",
        "spin-raw-component-route",
        "spin-component-route",
        "spin-client-addr",
        "spin-path-match-n",
    ] {
        h.remove(name);
    }
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set("spin-full-url", &full_url);
    set("spin-path-info", &path);
    set("spin-matched-route", "/...");
    set("spin-base-path", "/");
    set("spin-raw-component-route", "/...");
    set("spin-component-route", "");
    set("spin-client-addr", &peer.to_string());
    Ok(http::Request::from_parts(parts, Full::new(body)))
}

async fn serve(
    app: Arc<App>,
    req: http::Request<hyper::body::Incoming>,
    local: SocketAddr,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let req = match spin_request(req, local, peer).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let (resp, instantiate) = match tokio::time::timeout(REQUEST_TIMEOUT, app.call(req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            eprintln!("spin-host: {method} {path}: {e:#}");
            (
                plain(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("component error: {e:#}\n"),
                ),
                Duration::ZERO,
            )
        }
        Err(_) => {
            eprintln!("spin-host: {method} {path}: timed out");
            (
                plain(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "timed out\n".into(),
                ),
                Duration::ZERO,
            )
        }
    };
    if app.log {
        let total = started.elapsed();
        eprintln!(
            "spin-host: {method} {path} {} instantiate={:.2}ms total={:.2}ms",
            resp.status().as_u16(),
            instantiate.as_secs_f64() * 1e3,
            total.as_secs_f64() * 1e3
        );
    }
    resp
}

async fn wait_for_shutdown(exit_on_stdin_eof: bool) {
    use tokio::io::AsyncReadExt;
    let stdin_eof = async {
        if !exit_on_stdin_eof {
            return std::future::pending::<()>().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    let sigterm = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_eof => {}
        () = sigterm => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = parse_args(std::env::args().skip(1))?;

    let mut config = Config::new();
    config.wasm_component_model_async(true);
    let engine = Engine::new(&config)?;
    let started = Instant::now();
    let component = load_component(&engine, &opts.component, opts.cache)?;
    let compiled = started.elapsed();

    let mut linker = Linker::<Ctx>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    apis::add_to_linker(&mut linker)?;
    let pre = ServicePre::new(linker.instantiate_pre(&component)?).map_err(|e| {
        anyhow::anyhow!("the component does not export wasi:http/handler@0.3.0: {e}")
    })?;

    if let Some(dir) = opts.sqlite.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let databases = HashMap::from([("default".to_owned(), opts.sqlite.clone())]);
    let shared = Arc::new(apis::Shared::new(
        &["default".to_owned()],
        databases,
        opts.variables.clone(),
    ));
    // Fail now, not on the first request, when the database file cannot be opened.
    shared
        .connect("default")
        .map_err(|e| anyhow::anyhow!("opening {}: {e:?}", opts.sqlite.display()))?;

    let app = Arc::new(App {
        engine,
        pre,
        shared,
        outbound: Arc::new(opts.outbound.clone()),
        log: opts.log,
    });

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let local = listener.local_addr()?;
    eprintln!(
        "spin-host: component {} ready in {:.0} ms",
        opts.component.display(),
        compiled.as_secs_f64() * 1e3
    );
    println!("listening on http://{local}");
    use std::io::Write as _;
    std::io::stdout().flush()?;

    let accept = async {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("spin-host: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let app = app.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(serve(app, req, local, peer).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(io, svc)
                    .await
                {
                    if !e.is_incomplete_message() {
                        eprintln!("spin-host: connection from {peer}: {e}");
                    }
                }
            });
        }
    };
    tokio::select! {
        () = accept => {}
        () = wait_for_shutdown(opts.exit_on_stdin_eof) => {}
    }
    Ok(())
}
