// Loopback sink for bench/e2e.py: answers every POST 200 {"ok":true} and measures latency.
//
// Usage: node bench/e2e_sink.mjs        prints {"url": "..."} on stdout once listening.
//
// Each POST body is an event (what bench/e2e_plugin.js sends). When its properties carry
// `run` and `sent_ms` (wall-clock ms, set by the poster just before the /v1/batch request
// left), the sink records `arrival - sent_ms` for that run, keyed by messageId so a
// redelivery (at-least-once) is counted once. Events without `run` (the Node harness) are
// only counted.
//   GET /stats?run=R  -> {run, received, distinct, first_ms, last_ms, p50_ms, p99_ms, max_ms}
//   GET /stats        -> {untagged, requests}
//   POST /delay/MS    -> answered after MS ms (bench/isolation.py: slow and hung destinations)
// The clock is performance.timeOrigin + performance.now(): wall clock, sub-millisecond.
import http from "node:http";

const body = Buffer.from('{"ok":true}');
const runs = new Map(); // run -> {seen: Set, lat: number[], received, first, last}
let untagged = 0;
let requests = 0;
const now = () => performance.timeOrigin + performance.now();

function record(text, arrival) {
  let event;
  try { event = JSON.parse(text); } catch { untagged++; return; }
  const p = event && event.properties;
  if (!p || p.run === undefined || typeof p.sent_ms !== "number") { untagged++; return; }
  let r = runs.get(p.run);
  if (!r) { r = { seen: new Set(), lat: [], received: 0, first: arrival, last: arrival }; runs.set(p.run, r); }
  r.received++;
  r.last = arrival;
  const key = event.messageId ?? `${p.poster}-${p.n}`;
  if (r.seen.has(key)) return;
  r.seen.add(key);
  r.lat.push(arrival - p.sent_ms);
}

function stats(run) {
  const r = runs.get(run);
  if (!r) return { run, received: 0, distinct: 0 };
  const s = Float64Array.from(r.lat).sort();
  const pct = (q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : 0);
  return { run, received: r.received, distinct: r.seen.size, first_ms: r.first, last_ms: r.last,
    p50_ms: pct(0.5), p99_ms: pct(0.99), max_ms: s.length ? s[s.length - 1] : 0 };
}

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    const url = new URL(req.url, "http://sink");
    const run = url.searchParams.get("run");
    const out = run === null ? { untagged, requests } : stats(run);
    const data = Buffer.from(JSON.stringify(out));
    res.writeHead(200, { "content-type": "application/json", "content-length": data.length });
    res.end(data);
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const arrival = now();
    requests++;
    record(Buffer.concat(chunks).toString("utf8"), arrival);
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
    };
    const delay = /^\/delay\/(\d+)/.exec(req.url);  // a slow (or, with a long delay, hung) destination
    if (delay) setTimeout(answer, Number(delay[1]));
    else answer();
  });
});
server.keepAliveTimeout = 60_000;
server.requestTimeout = 0; // hung destinations hold requests open on purpose
server.maxConnections = 100_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` }) + "\n");
});
process.on("SIGTERM", () => { process.stderr.write(`e2e_sink: ${requests} requests\n`); process.exit(0); });
