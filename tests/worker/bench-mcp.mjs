// Measures the example MCP Worker (examples/mcp-worker: portcullis-resource-server's layer in
// a Worker) in Miniflare (workerd) on loopback: workerd's CPU time per request, read from
// /proc/<workerd pid>/stat before and after N sequential requests, for
//   - `ping` without a token (401 with its challenge: no verification; the baseline),
//   - `ping` with a valid ES256 bearer token (verification with the cached JWKS + JSON-RPC),
//   - `tools/call whoami` with that token (verification + the per-tool policy on the body).
// CPU per verification = (valid-token ping) - (no-token ping). The issuer is a small HTTP
// server in this process (RFC 8414 metadata and a JWKS with a fresh P-256 key, tokens signed
// here with node:crypto); it counts JWKS fetches, which must stay at 1 (cached per isolate).
//
//   node bench-mcp.mjs --build DIR [--requests N]
//
// Prints one JSON line; only workerd's CPU is counted (not this process's).

import { createServer } from "node:http";
import { generateKeyPairSync, sign } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Miniflare } from "miniflare";
import { arg, cpuMs, workerdPids } from "./bench-lib.mjs";
import { COMPATIBILITY_DATE } from "./run.mjs";

const build = path.resolve(arg("--build", "../../examples/mcp-worker/build"));
const requests = Number(arg("--requests", "500"));

const listen = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

async function main() {
  const script = await readFile(path.join(build, "index.js"), "utf8");
  const wasm = await readFile(path.join(build, "index_bg.wasm"));

  // The issuer.
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: "bench", alg: "ES256", use: "sig" };
  let jwksFetches = 0;
  const issuerServer = createServer((req, res) => {
    const doc =
      req.url === "/.well-known/oauth-authorization-server"
        ? { issuer, jwks_uri: `${issuer}/jwks` }
        : req.url === "/jwks"
          ? (jwksFetches++, { keys: [jwk] })
          : null;
    res.writeHead(doc ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(doc ?? {}));
  });
  const issuer = `http://127.0.0.1:${await listen(issuerServer)}`;

  // The Worker: take a port first (the resource URL names it), then bind it.
  const probe = createServer();
  const port = await listen(probe);
  await new Promise((r) => probe.close(r));
  const resource = `http://127.0.0.1:${port}/mcp`;
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: "ES256", typ: "at+jwt", kid: "bench" })}.${b64({
    iss: issuer, sub: "bench-user", aud: resource, client_id: "bench-client",
    scope: "mcp:read mcp:write", jti: "j", iat: now, exp: now + 3600,
  })}`;
  const token = `${input}.${sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;

  const mf = new Miniflare({
    host: "127.0.0.1",
    port,
    telemetry: { enabled: false },
    enableDevRegistry: false,
    workers: [
      {
        config: {
          name: "mcp-worker",
          compatibilityDate: COMPATIBILITY_DATE,
          manifest: {
            mainModule: "index.js",
            modulesRoot: build,
            modules: {
              "index.js": { type: "esm", contents: script },
              "index_bg.wasm": { type: "wasm", contents: new Uint8Array(wasm) },
            },
          },
          env: {
            MCP_AUTH_ISSUER: { type: "text", value: issuer },
            MCP_RESOURCE_URL: { type: "text", value: resource },
          },
        },
      },
    ],
  });
  await mf.ready;
  try {
    const post = (body, auth, want) => async () => {
      const r = await fetch(resource, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...(auth ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
      if (r.status !== want) throw new Error(`${JSON.stringify(body)}: ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
    };
    const ping = { jsonrpc: "2.0", id: 1, method: "ping" };
    const whoami = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } };
    const cases = {
      no_token_ping: post(ping, false, 401),
      bearer_ping: post(ping, true, 200),
      bearer_tools_call: post(whoami, true, 200),
    };
    for (const run of Object.values(cases)) for (let i = 0; i < 50; i++) await run(); // warm-up
    const pids = await workerdPids();
    const result = { build: path.basename(build), requests };
    for (const [name, run] of Object.entries(cases)) {
      const c0 = cpuMs(pids);
      const w0 = performance.now();
      for (let i = 0; i < requests; i++) await run();
      result[`workerd_cpu_ms_${name}`] = Number(((cpuMs(pids) - c0) / requests).toFixed(3));
      result[`wall_ms_${name}`] = Number(((performance.now() - w0) / requests).toFixed(3));
    }
    result.workerd_cpu_ms_per_verification = Number(
      (result.workerd_cpu_ms_bearer_ping - result.workerd_cpu_ms_no_token_ping).toFixed(3),
    );
    result.jwks_fetches = jwksFetches;
    console.log(JSON.stringify(result));
    if (jwksFetches !== 1) throw new Error(`the JWKS was fetched ${jwksFetches} times: not cached`);
  } finally {
    await mf.dispose();
    issuerServer.close();
  }
}

main().catch((e) => {
  console.error(`bench-mcp.mjs: ${e.stack ?? e}`);
  process.exit(1);
});
