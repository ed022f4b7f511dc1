// Closed-loop HTTP/1.1 keep-alive load generator for bench/intake.py.
// Usage: node intake_load.mjs '{"url": "http://127.0.0.1:PORT/v1/batch", "connections": 32,
//          "seconds": 5, "template": "<json with __MID__ placeholders>", "headers": {...}}'
// Every __MID__ is replaced by a fresh messageId so that no event is a duplicate.
// Prints one JSON line: {"requests", "ok", "failed", "statuses", "seconds", "events"}.
import http from "node:http";

const opts = JSON.parse(process.argv[2]);
const url = new URL(opts.url);
const parts = opts.template.split("__MID__");
const eventsPerRequest = parts.length - 1 || 1;
const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
const runId = `${process.pid}-${Date.now()}`;
let seq = 0;
let ok = 0, failed = 0, requests = 0;
const statuses = {};

function body() {
  if (parts.length === 1) return parts[0];
  let out = parts[0];
  for (let i = 1; i < parts.length; i++) out += `${runId}-${seq++}` + parts[i];
  return out;
}

function once() {
  return new Promise((resolve) => {
    const data = body();
    const req = http.request({
      agent, host: url.hostname, port: url.port, path: url.pathname, method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...(opts.headers || {}) },
    }, (res) => {
      res.resume();
      res.on("end", () => {
        requests++;
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        if (res.statusCode === 200) ok++; else failed++;
        resolve();
      });
    });
    req.on("error", () => { failed++; requests++; resolve(); });
    req.end(data);
  });
}

const warmupUntil = Date.now() + (opts.warmup_ms ?? 500);
while (Date.now() < warmupUntil) { await Promise.all(Array.from({ length: opts.connections }, once)); }
ok = failed = requests = 0; for (const k of Object.keys(statuses)) delete statuses[k];
const start = process.hrtime.bigint();
const end = Date.now() + opts.seconds * 1000;
async function worker() { while (Date.now() < end) await once(); }
await Promise.all(Array.from({ length: opts.connections }, worker));
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
agent.destroy();
console.log(JSON.stringify({ requests, ok, failed, statuses, seconds, events: ok * eventsPerRequest }));
