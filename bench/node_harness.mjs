// Run a segfuncd plugin file unchanged under Node, with Node's own fetch: the baseline.
//
// Usage: node bench/node_harness.mjs PLUGIN.js --events N --concurrency C --sink URL
//                                    [--lodash lodash.min.js] [--type track] [--settings JSON]
//                                    [--aws DIR]  (DIR/node_modules/aws-sdk becomes the AWS global)
// The plugin is a plain sloppy-mode script, loaded with vm.runInContext into a context that
// has the same globals segfuncd gives it; `settings.url` is the sink. Prints one JSON object:
// {events, seconds, events_per_s, p50_ms, p99_ms, errors}.
import fs from "node:fs";
import vm from "node:vm";
import crypto from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";

function parseArgs(argv) {
  const opts = { events: 1000, concurrency: 16, sink: "http://127.0.0.1:9", type: "track", lodash: null, settings: "{}", aws: null };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith("--")) opts[a.slice(2)] = argv[++i];
    else rest.push(a);
  }
  if (rest.length !== 1) {
    process.stderr.write("usage: node_harness.mjs PLUGIN.js --events N --concurrency C --sink URL\n");
    process.exit(2);
  }
  opts.plugin = rest[0];
  opts.events = Number(opts.events);
  opts.concurrency = Number(opts.concurrency);
  return opts;
}

function errorClass(name) {
  const cls = class extends Error { constructor(m) { super(m); this.name = name; } };
  Object.defineProperty(cls, "name", { value: name });
  return cls;
}

function makeContext(lodashPath, awsDir) {
  const entries = new Map();
  const cache = {
    load(key, ttl, fn) {
      const hit = entries.get(key);
      if (hit && hit.expires > Date.now()) return hit.promise;
      const promise = Promise.resolve().then(fn);
      entries.set(key, { promise, expires: Date.now() + ttl });
      return promise;
    },
    delete(key) { return entries.delete(key); },
  };
  const quiet = { log() {}, info() {}, warn() {}, error() {}, debug() {} };
  const sandbox = {
    fetch, Request, Response, Headers, URL, URLSearchParams, atob, btoa, console: quiet,
    crypto: { ...crypto, createHash: crypto.createHash, createHmac: crypto.createHmac,
      randomUUID: crypto.randomUUID, randomBytes: crypto.randomBytes },
    Buffer, setTimeout, clearTimeout, cache,
    EventNotSupported: errorClass("EventNotSupported"), InvalidEventPayload: errorClass("InvalidEventPayload"),
    ValidationError: errorClass("ValidationError"), RetryError: errorClass("RetryError"),
  };
  if (awsDir) sandbox.AWS = createRequire(path.join(path.resolve(awsDir), "package.json"))("aws-sdk");
  const ctx = vm.createContext(sandbox);
  if (lodashPath) vm.runInContext(fs.readFileSync(lodashPath, "utf8"), ctx, { filename: "lodash.min.js" });
  return ctx;
}

const HANDLERS = { track: ["onTrack", "track"], identify: ["onIdentify", "identify"], page: ["onPage", "page"] };

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ctx = makeContext(opts.lodash, opts.aws);
  vm.runInContext(fs.readFileSync(opts.plugin, "utf8"), ctx, { filename: opts.plugin });
  const names = HANDLERS[opts.type] || [];
  const handler = names.map((n) => vm.runInContext(`typeof ${n} === "function" ? ${n} : undefined`, ctx)).find(Boolean);
  if (!handler) throw new Error(`no handler for ${opts.type} in ${opts.plugin}`);
  const settings = { ...JSON.parse(opts.settings), url: opts.sink, apiKey: "bench" };
  const latencies = new Float64Array(opts.events);
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  async function worker() {
    while (next < opts.events) {
      const i = next++;
      const event = { type: opts.type, event: "Bench", messageId: `m-${i}`, properties: { n: i, plan: "pro" },
        userId: `u-${i % 100}`, timestamp: new Date().toISOString() };
      const s = performance.now();
      try { await handler(event, settings); } catch (e) { errors++; }
      latencies[i] = performance.now() - s;
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  process.stdout.write(JSON.stringify({
    events: opts.events, seconds, events_per_s: opts.events / seconds,
    p50_ms: pct(0.5), p99_ms: pct(0.99), errors,
  }) + "\n");
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
