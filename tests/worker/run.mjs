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
//
//   node run.mjs --many
//
// Runs any number of Workers, each a Miniflare instance with its own workerd, for a test
// process that starts many (tests/src/hosts/miniflare.rs): loading Miniflare costs Node about
// 0.75 CPU-seconds, which one process per Worker paid again for each. Reads JSON lines on
// stdin: {"op":"start","id":N,"args":[...the arguments above...]} and {"op":"stop","id":N}.
// Writes "N|<line>" for each line instance N logs (its "listening on ..." line, the Worker's
// console output, a failure) and "N!exited" once it has stopped or failed to start. Stops
// every instance and exits when stdin closes.

import { readFile } from "node:fs/promises";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";
import { Miniflare } from "miniflare";

// The compatibility date of wrangler.toml (tests/tests/worker.rs checks they agree).
export const COMPATIBILITY_DATE = "2026-11-01";

const USAGE =
  "usage: node run.mjs --build DIR [--port N] [--host H] [--persist DIR] [--d1-id ID] [--kv-id ID] [--var NAME=VALUE ...] [--ignore-stdin]\n" +
  "       node run.mjs --many";

class UsageError extends Error {}

function usage(message) {
  throw new UsageError(message);
}

// The options of one Worker; `inherit` passes this process's PORTCULLIS_* variables as vars.
function parseArgs(argv, inherit = true) {
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
  for (const [k, v] of Object.entries(inherit ? process.env : {})) {
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

// Starts one Worker in Miniflare; `handleStructuredLogs` receives workerd's output (by
// default Miniflare prints it). Resolves to the instance and its URL once it listens.
async function startWorker(opts, handleStructuredLogs) {
  const build = path.resolve(opts.build);
  let script;
  let wasm;
  try {
    script = await readFile(path.join(build, "index.js"), "utf8");
    wasm = await readFile(path.join(build, "index_bg.wasm"));
  } catch (e) {
    throw new Error(`no built Worker in ${build} (${e.code ?? e.message}); run scripts/build-worker`);
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
    ...(handleStructuredLogs ? { handleStructuredLogs } : {}),
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
  try {
    const url = await mf.ready;
    return { mf, url, ms: Math.round(performance.now() - started) };
  } catch (e) {
    await mf.dispose().catch(() => {});
    throw e;
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`run.mjs: ${e.message}`);
    console.error(USAGE);
    process.exit(2);
  }
  let worker;
  try {
    worker = await startWorker(opts);
  } catch (e) {
    console.error(`run.mjs: ${e.message ?? e}`);
    process.exit(1);
  }
  const { mf, url, ms } = worker;
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

// --many: one Miniflare instance per "start" line, until stdin closes.
async function serveMany() {
  const instances = new Map(); // id -> Promise of the started worker (or of undefined)
  const say = (id, text) => {
    for (const line of String(text).split("\n")) process.stdout.write(`${id}|${line}\n`);
  };
  const exited = (id) => process.stdout.write(`${id}!exited\n`);
  const start = async (id, args) => {
    try {
      const opts = parseArgs(args, false);
      const { url, ms, mf } = await startWorker(opts, ({ message }) => say(id, message));
      say(id, `listening on ${url.origin} (Miniflare ready in ${ms} ms)`);
      return mf;
    } catch (e) {
      say(id, `run.mjs: ${e.message ?? e}`);
      exited(id);
      return undefined;
    }
  };
  const stop = async (id) => {
    const mf = await instances.get(id);
    if (!instances.delete(id) || !mf) return;
    say(id, "stopping");
    await mf.dispose().catch((e) => say(id, `run.mjs: stopping: ${e.message ?? e}`));
    exited(id);
  };
  const lines = readline.createInterface({ input: process.stdin });
  lines.on("line", (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      console.error(`run.mjs --many: not a JSON line: ${line}`);
      return;
    }
    if (msg.op === "start" && Array.isArray(msg.args) && !instances.has(msg.id)) {
      instances.set(msg.id, start(msg.id, msg.args));
    } else if (msg.op === "stop") {
      stop(msg.id);
    } else {
      console.error(`run.mjs --many: unknown message: ${line}`);
    }
  });
  lines.on("close", async () => {
    await Promise.allSettled([...instances.keys()].map(stop));
    process.exit(0);
  });
}

// Run only when executed, not when imported (bench.mjs imports COMPATIBILITY_DATE).
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  (process.argv[2] === "--many" ? serveMany() : main()).catch((e) => {
    console.error(`run.mjs: ${e.stack ?? e}`);
    process.exit(1);
  });
}
