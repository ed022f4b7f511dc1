// segfuncd prelude, part 0: the host bridge, the dispatcher, console, timers, errors, cache.
//
// sandbox.py evaluates every prelude file inside ONE strict-mode function, so the names
// declared here (host, dispatcher state) are closure variables that user code can never
// reach. Rules:
//  * the native `call_python` and the `dukpy` keyword object are re-installed by dukpy on
//    every eval; we trap both globals with non-configurable accessors so user code can
//    neither read them nor plant its own setter to steal them;
//  * every host call carries a per-context token, so a stolen native would be useless;
//  * user code runs only from the dispatcher below, which records which invocation is
//    running (`cur`) so console output, fetches and timers are charged to it.

const __native = globalThis.call_python;
const __boot = globalThis.dukpy; // this eval's keyword arguments: {token, lodash}
const __token = __boot.token;
let __kw = null;
delete globalThis.call_python;
delete globalThis.dukpy;
Object.defineProperty(globalThis, "call_python", {
  get() { return undefined; }, set(v) {}, enumerable: false, configurable: false,
});
Object.defineProperty(globalThis, "dukpy", {
  get() { return undefined; }, set(v) { __kw = v; }, enumerable: false, configurable: false,
});

/** Call an allow-listed host function (sandbox.Host.call). */
function host(name, ...args) {
  return __native("h", __token, name, ...args);
}

const LOG_CAP = 4096; // bytes of console output kept per invocation
const VALUE_CAP = 4096; // characters of JSON return value kept
const BARRIER = 12; // microtask ticks granted to each trigger before the next one runs
const SLICE_MS = 20; // a slice stops starting new work after this long

let cur = null; // id of the invocation whose code is running
let unacked = []; // outboxes not yet confirmed by Python (an interrupt can lose a return value)
let out = newOutbox(0);
let handlers = {};
const queue = [];
const live = new Map(); // invocation id -> {logBytes, truncated}
const fetches = new Map(); // fetch id -> {resolve, reject, inv, url}
const timers = new Map(); // timer id -> {fn, args, inv}
let nextFetchId = 1;
let nextTimerId = 1;

function newOutbox(seq) {
  return { s: seq, d: [], f: [], t: [], l: [] };
}

// ---- errors ---------------------------------------------------------------------------
function defineError(name) {
  const cls = class extends Error {
    constructor(message) {
      super(message);
      Object.defineProperty(this, "name", { value: name, writable: true, configurable: true });
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  Object.defineProperty(cls.prototype, "name", { value: name, writable: true, configurable: true });
  return cls;
}
const EventNotSupported = defineError("EventNotSupported");
const InvalidEventPayload = defineError("InvalidEventPayload");
const ValidationError = defineError("ValidationError");
// RetryError(message, { retryAfter: seconds }): segfuncd's extension of Segment's API; the
// next attempt waits at least that long (capped at 1 h by the daemon).
class RetryError extends defineError("RetryError") {
  constructor(message, options) {
    super(message);
    const after = options !== null && typeof options === "object" ? options.retryAfter : undefined;
    if (typeof after === "number" && isFinite(after) && after > 0) this.retryAfter = after;
  }
}
Object.defineProperty(RetryError, "name", { value: "RetryError" });
class FetchError extends Error {
  constructor(message, type, systemError) {
    super(message);
    Object.defineProperty(this, "name", { value: "FetchError", writable: true, configurable: true });
    this.type = type || "system";
    if (systemError) { this.code = this.errno = systemError; }
  }
}
Object.defineProperty(FetchError.prototype, "name", { value: "FetchError", writable: true, configurable: true });

function errorInfo(e) {
  if (e !== null && typeof e === "object") {
    let name = typeof e.name === "string" && e.name ? e.name : "Error";
    let message = typeof e.message === "string" ? e.message : safeString(e);
    if (name === "InternalError" && /out of memory/.test(message)) name = "MemoryLimitError";
    const info = { name: name, message: message, stack: typeof e.stack === "string" ? e.stack.slice(0, 2048) : null };
    if (typeof e.retryAfter === "number" && isFinite(e.retryAfter)) info.retryAfter = e.retryAfter;
    return info;
  }
  return { name: "Error", message: safeString(e), stack: null };
}

function safeString(v) {
  try { return String(v); } catch (e) { return "[unprintable]"; }
}

// ---- console --------------------------------------------------------------------------
function inspect(v, depth) {
  if (typeof v === "string") return depth ? JSON.stringify(v) : v;
  if (v instanceof Error) return v.stack ? `${v.name}: ${v.message}\n${v.stack}`.trim() : `${v.name}: ${v.message}`;
  if (typeof v === "function") return `[Function: ${v.name || "anonymous"}]`;
  if (typeof v === "undefined" || typeof v === "symbol" || typeof v === "bigint") return safeString(v);
  try {
    const s = JSON.stringify(v);
    return s === undefined ? safeString(v) : s;
  } catch (e) {
    return safeString(v);
  }
}

function log(level, args) {
  if (cur === null) return; // output from nowhere (top-level code at load) is dropped
  const st = live.get(cur);
  if (!st || st.truncated) return;
  let msg = Array.prototype.map.call(args, (a) => inspect(a, false)).join(" ");
  if (st.logBytes + msg.length > LOG_CAP) {
    msg = msg.slice(0, Math.max(0, LOG_CAP - st.logBytes)) + " … [log output truncated at 4 KB]";
    st.truncated = true;
  }
  st.logBytes += msg.length;
  out.l.push([cur, level, msg, Date.now() / 1000]);
}

const console = Object.freeze({
  log() { log("log", arguments); },
  info() { log("info", arguments); },
  warn() { log("warn", arguments); },
  error() { log("error", arguments); },
  debug() { log("debug", arguments); },
  trace() { log("debug", arguments); },
});

// ---- timers ---------------------------------------------------------------------------
function setTimeout(fn, ms, ...args) {
  if (typeof fn !== "function") throw new TypeError("setTimeout: callback must be a function");
  const id = nextTimerId++;
  timers.set(id, { fn: fn, args: args, inv: cur });
  out.t.push([id, cur, Math.max(0, Number(ms) || 0)]);
  return id;
}
function clearTimeout(id) {
  timers.delete(id);
}

// ---- cache.load / cache.delete: a per-version, best-effort memo ------------------------
const cacheEntries = new Map();
const cache = Object.freeze({
  load(key, ttlMs, fn) {
    const now = Date.now();
    const hit = cacheEntries.get(key);
    if (hit && hit.expires > now) return hit.promise;
    const promise = Promise.resolve().then(() => fn());
    const entry = { promise: promise, expires: now + (Number(ttlMs) || 0) };
    cacheEntries.set(key, entry);
    promise.catch(() => { if (cacheEntries.get(key) === entry) cacheEntries.delete(key); });
    return promise;
  },
  delete(key) {
    return cacheEntries.delete(key);
  },
});

// ---- the dispatcher -------------------------------------------------------------------
function finish(inv, ok, value) {
  if (!live.has(inv)) return; // abandoned (timed out, limited) or already reported
  live.delete(inv);
  if (ok) {
    let s;
    try { s = JSON.stringify(value === undefined ? null : value); } catch (e) { s = JSON.stringify(safeString(value)); }
    if (s === undefined) s = "null";
    if (s.length > VALUE_CAP) s = JSON.stringify(s.slice(0, VALUE_CAP) + "… [truncated]");
    out.d.push([inv, true, s]);
  } else {
    out.d.push([inv, false, errorInfo(value)]);
  }
}

function start(t) {
  live.set(t.i, { logBytes: 0, truncated: false });
  let fn = null;
  for (const name of t.h) {
    if (typeof handlers[name] === "function") { fn = handlers[name]; break; }
  }
  if (fn === null) {
    finish(t.i, false, new EventNotSupported(`${t.ty} is not supported`));
    return;
  }
  let p;
  try {
    p = Promise.resolve(fn(JSON.parse(t.e), JSON.parse(t.s)));
  } catch (e) {
    finish(t.i, false, e);
    return;
  }
  p.then((v) => finish(t.i, true, v), (e) => finish(t.i, false, e));
}

function settleFetch(t) {
  const f = fetches.get(t.f);
  if (!f) return;
  fetches.delete(t.f);
  if (t.err !== undefined) f.reject(new FetchError(`request to ${f.url} failed, reason: ${t.err}`, "system", t.code));
  else f.resolve(__makeResponse(t.r));
}

function fireTimer(t) {
  const tm = timers.get(t.t);
  if (!tm) return;
  timers.delete(t.t);
  if (!live.has(tm.inv)) return;
  tm.fn.apply(undefined, tm.args);
}

function apply(t) {
  switch (t.k) {
    case "s": cur = t.i; start(t); break;
    case "f": cur = t.i; settleFetch(t); break;
    case "t": cur = t.i; fireTimer(t); break;
    case "x": abandon(t.i); break;
  }
}

function abandon(inv) {
  live.delete(inv);
  for (const [id, f] of fetches) if (f.inv === inv) fetches.delete(id);
  for (const [id, tm] of timers) if (tm.inv === inv) timers.delete(id);
}

async function pump() {
  const began = Date.now();
  while (queue.length) {
    if (Date.now() - began > SLICE_MS) break; // Python sees `q` > 0 and runs another slice
    const t = queue.shift();
    try { apply(t); } catch (e) { if (live.has(cur)) finish(cur, false, e); }
    // let this trigger's own continuations run while `cur` still names it
    for (let k = 0; k < BARRIER; k++) await undefined;
  }
}

const dispatcher = Object.freeze({
  /** After the user script ran: find its handlers (declarations or top-level consts). */
  bind(found) {
    handlers = found;
    return Object.keys(found).filter((k) => typeof found[k] === "function");
  },
  /**
   * Run one slice: the triggers passed as dukpy.t. Returns every outbox Python has not
   * acknowledged (seq > ack), so nothing is lost when an interrupt ate a return value.
   * After an interrupt Python passes the error to charge to the invocation that was running.
   */
  slice(seq, ack, blameName, blameMessage) {
    while (unacked.length && unacked[0].s <= ack) unacked.shift();
    out = newOutbox(seq);
    unacked.push(out);
    if (blameName && cur !== null && live.has(cur)) {
      out.d.push([cur, false, { name: blameName, message: blameMessage, stack: null }]);
      abandon(cur);
    }
    cur = null;
    const kw = __kw;
    __kw = null;
    if (kw && kw.t) for (const t of kw.t) queue.push(t);
    pump();
    return { u: unacked, get q() { return queue.length; } };
  },
});
Object.defineProperty(globalThis, "__segfuncd", { value: dispatcher, enumerable: false, configurable: false, writable: false });
