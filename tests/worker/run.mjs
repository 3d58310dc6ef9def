// Runs a built Portcullis Worker (worker-build output: index.js + index_bg.wasm) in
// Miniflare (workerd) on loopback, with a D1 database bound as DB and a KV namespace bound
// as CACHE: fresh in-memory ones by default, or persisted under --persist DIR (the layout
// `wrangler d1 migrations apply --local --persist-to DIR` writes).
//
//   node run.mjs --build DIR [--port N] [--host H] [--persist DIR]
//                [--d1-id ID] [--kv-id ID] [--var NAME=VALUE ...] [--ignore-stdin]
//
// Every PORTCULLIS_* environment variable is passed to the Worker as a var; --var wins.
// Prints "listening on http://HOST:PORT" once ready (with --port 0 the port is chosen by
// the system) and stops when its stdin closes (unless --ignore-stdin) or on SIGINT/SIGTERM,
// so a test harness that holds the stdin pipe stops it by exiting, however it exits.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Miniflare } from "miniflare";

// The compatibility date of wrangler.toml (tests/tests/worker.rs checks they agree).
export const COMPATIBILITY_DATE = "2026-11-01";

function usage(message) {
  console.error(`run.mjs: ${message}`);
  console.error(
    "usage: node run.mjs --build DIR [--port N] [--host H] [--persist DIR] [--d1-id ID] [--kv-id ID] [--var NAME=VALUE ...] [--ignore-stdin]",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = {
    build: null,
    port: 0,
    host: "127.0.0.1",
    persist: null,
    d1Id: "portcullis-local",
    kvId: "portcullis-cache-local",
    vars: {},
    ignoreStdin: false,
  };
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("PORTCULLIS_")) opts.vars[k] = v;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "--build":
        opts.build = value();
        break;
      case "--port": {
        const port = Number(value());
        if (!Number.isInteger(port) || port < 0 || port > 65535) usage("--port must be 0..65535");
        opts.port = port;
        break;
      }
      case "--host":
        opts.host = value();
        break;
      case "--persist":
        opts.persist = value();
        break;
      case "--d1-id":
        opts.d1Id = value();
        break;
      case "--kv-id":
        opts.kvId = value();
        break;
      case "--var": {
        const v = value();
        const eq = v.indexOf("=");
        if (eq <= 0) usage(`--var expects NAME=VALUE, got ${JSON.stringify(v)}`);
        opts.vars[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      case "--ignore-stdin":
        opts.ignoreStdin = true;
        break;
      default:
        usage(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (!opts.build) usage("--build is required");
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const build = path.resolve(opts.build);
  let script;
  let wasm;
  try {
    script = await readFile(path.join(build, "index.js"), "utf8");
    wasm = await readFile(path.join(build, "index_bg.wasm"));
  } catch (e) {
    console.error(`run.mjs: no built Worker in ${build} (${e.code ?? e.message}); run scripts/build-worker`);
    process.exit(1);
  }
  const env = {
    DB: { type: "d1", id: opts.d1Id },
    CACHE: { type: "kv", id: opts.kvId },
  };
  for (const [k, v] of Object.entries(opts.vars)) env[k] = { type: "text", value: v };

  const started = performance.now();
  const mf = new Miniflare({
    host: opts.host,
    port: opts.port,
    telemetry: { enabled: false },
    enableDevRegistry: false,
    ...(opts.persist ? { resourcePersistencePath: path.join(path.resolve(opts.persist), "v3") } : {}),
    workers: [
      {
        config: {
          name: "portcullis",
          compatibilityDate: COMPATIBILITY_DATE,
          manifest: {
            mainModule: "index.js",
            modulesRoot: build,
            modules: {
              "index.js": { type: "esm", contents: script },
              "index_bg.wasm": { type: "wasm", contents: new Uint8Array(wasm) },
            },
          },
          env,
        },
      },
    ],
  });
  const url = await mf.ready;
  const ms = Math.round(performance.now() - started);
  console.log(`listening on ${url.origin} (Miniflare ready in ${ms} ms)`);

  let stopping = false;
  const stop = async (why) => {
    if (stopping) return;
    stopping = true;
    console.log(`stopping (${why})`);
    try {
      await mf.dispose();
    } finally {
      process.exit(0);
    }
  };
  if (!opts.ignoreStdin) {
    process.stdin.on("end", () => stop("stdin closed"));
    process.stdin.on("error", () => stop("stdin error"));
    process.stdin.resume();
  }
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

// Run only when executed, not when imported (bench.mjs imports COMPATIBILITY_DATE).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((e) => {
    console.error(`run.mjs: ${e.stack ?? e}`);
    process.exit(1);
  });
}
