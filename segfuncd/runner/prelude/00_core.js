// segfuncd prelude, part 0: the host bridge, the dispatcher, console, timers, errors, cache.
//
// sandbox.py evaluates every prelude file inside ONE strict-mode function, so the names
// declared here (host, dispatcher state) are closure variables that user code can never
// reach. The context is untrusted (answers.py parses what it says; child.py checks ids),
// but the prelude still keeps its own secrets. Rules:
//  * the native `call_python` and the `dukpy` keyword object are re-installed by dukpy on
//    every eval; we trap both globals with non-configurable accessors so user code can
//    neither read them nor plant its own setter to steal them;
//  * every host call carries a per-context token; the native builds its argument array
//    with [[Set]] and serializes it with JSON.stringify, so host() first makes sure no
//    user accessor or toJSON sits on Array.prototype / Object.prototype (see cleanProtos);
//  * Error.prepareStackTrace is an accessor of ours: user code gets call sites whose
//    getFunction() / getThis() are undefined, so no stack frame hands out a prelude function;
//  * intrinsics the dispatcher relies on are captured below before user code runs, and
//    the slice answer is ONE string built by concatenation (answer()), so no user hook
//    (toJSON, getters, patched Array/Map/Promise/JSON methods) can reshape it;
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

// ---- captured intrinsics --------------------------------------------------------------
const _apply = Reflect.apply;
const _keys = Object.keys;
const _stringify = JSON.stringify;
const _parse = JSON.parse;
const _now = Date.now;
const _define = Reflect.defineProperty;
const _create = Object.create;
const _deleteProperty = Reflect.deleteProperty;
const _getOwn = Reflect.getOwnPropertyDescriptor;
const _getProto = Reflect.getPrototypeOf;
const _strSlice = String.prototype.slice;
const _test = RegExp.prototype.test;
const _ObjectProto = Object.prototype;
const _ArrayProto = Array.prototype;
const _HOOKED = ["toJSON", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]; // what host()'s native touches
const HOST_MAX_ARGS = 10; // name + 9: the native's array is ["h", token, ...], indices 0..11
const _String = String;

function str(v) {
  return typeof v === "string" ? v : safeString(v);
}
function cutText(s, n) {
  return s.length <= n ? s : _apply(_strSlice, s, [0, n]) + " … [cut at " + (n >> 10) + " KB]";
}
function q(s) {
  return _stringify(typeof s === "string" ? s : "");
}
function num(n) {
  return typeof n === "number" && n === n && n !== Infinity && n !== -Infinity ? "" + n : "0";
}

/** Remove user properties the native would run (accessors, toJSON), run fn, put them back. */
function cleanProtos(fn) {
  if (_getProto(_ArrayProto) !== _ObjectProto) {
    throw new TypeError("host functions are unavailable: the prototype of Array.prototype was replaced");
  }
  let saved = null;
  let n = 0;
  for (let k = 0; k < 2 * _HOOKED.length; k++) {
    const proto = k & 1 ? _ObjectProto : _ArrayProto;
    const key = _HOOKED[k >> 1];
    const d = _getOwn(proto, key);
    if (d === undefined) continue;
    if (!_deleteProperty(proto, key)) {
      if (saved) restore(saved, n);
      throw new TypeError(`host functions are unavailable: ${key} on a built-in prototype cannot be removed`);
    }
    if (!saved) saved = _create(null);
    saved[n++] = { proto: proto, key: key, desc: d };
  }
  try {
    return fn();
  } finally {
    if (saved) restore(saved, n);
  }
}
function restore(saved, n) {
  for (let i = 0; i < n; i++) _define(saved[i].proto, saved[i].key, saved[i].desc);
}

/**
 * Call an allow-listed host function (sandbox._host_call); arguments must be primitives.
 * The host raises only when a limit fired (every other failure answers null); then we
 * wait here, out of user code's reach, for the runner's interrupt, which no catch stops.
 */
function host(name, a, b, c) {
  const n = arguments.length;
  if (n > HOST_MAX_ARGS) throw new TypeError("too many arguments to a host function");
  const args = arguments;
  let called = false;
  try {
    return cleanProtos(() => {
      called = true;
      if (n <= 4) {
        return n === 1 ? __native("h", __token, name)
          : n === 2 ? __native("h", __token, name, a)
            : n === 3 ? __native("h", __token, name, a, b)
              : __native("h", __token, name, a, b, c);
      }
      // more arguments (the lazy built-ins' host calls): index sets, safe while the
      // prototypes' index hooks are removed (cleanProtos), then one apply
      const all = ["h", __token];
      for (let i = 0; i < n; i++) all[i + 2] = args[i];
      return _apply(__native, undefined, all);
    });
  } catch (e) {
    if (called) for (;;) {} // eslint-disable-line no-empty
    throw e;
  }
}

// ---- Error.prepareStackTrace: V8's API, minus the functions and receivers ---------------
let userPrepare;
function safeSite(site) {
  const call = (m) => { try { return _apply(site[m], site, []); } catch (e) { return null; } };
  const o = {
    getFileName: () => call("getFileName"),
    getLineNumber: () => call("getLineNumber"),
    getColumnNumber: () => call("getColumnNumber"),
    getFunctionName: () => call("getFunctionName"),
    getTypeName: () => null,
    getMethodName: () => null,
    isNative: () => call("isNative"),
    isToplevel: () => null,
    isEval: () => null,
    isConstructor: () => null,
    getFunction: () => undefined,
    getThis: () => undefined,
    toString: () => str(call("toString")),
  };
  return Object.freeze(o);
}
/**
 * QuickJS builds every error's stack through this hook, the out-of-memory InternalError
 * included, even when user code then catches it: so this is where running out of memory
 * is seen (noteOutOfMemory, below). Without a user hook it writes QuickJS's own format.
 */
function prepareWrapper(err, sites) {
  if (isOutOfMemory(err)) noteOutOfMemory();
  try {
    const n = sites && typeof sites.length === "number" ? sites.length : 0;
    if (typeof userPrepare !== "function") return nativeStack(sites, n);
    const safe = [];
    for (let i = 0; i < n; i++) _define(safe, i, { value: safeSite(sites[i]), writable: true, enumerable: true, configurable: true });
    return userPrepare(err, safe);
  } catch (e) {
    // QuickJS does not call the hook again for an error made inside it, and drops what the
    // hook throws: memory that runs out in here is seen only here (unless a user hook
    // catches it itself)
    if (isOutOfMemory(e)) noteOutOfMemory();
    throw e;
  }
}
/** The stack text QuickJS writes when no hook is set (tests/test_sandbox_memory.py compares them). */
function nativeStack(sites, n) {
  let s = "";
  for (let i = 0; i < n; i++) {
    const c = sites[i];
    const file = c.getFileName();
    const line = c.getLineNumber();
    const where = line === -1 ? "" : ":" + line + ":" + c.getColumnNumber();
    if (c.isNative()) s += "    at " + c.getFunctionName() + " (native)\n";
    else if (typeof c.getFunction() !== "function") s += "    at " + file + where + "\n"; // a parse error's position
    else s += "    at " + (c.getFunctionName() || "<anonymous>") + " (" + file + where + ")\n";
  }
  return s;
}
const _InternalErrorProto = InternalError.prototype;
function isOutOfMemory(err) {
  // no allocation (memory has just run out); a real error's message is its own data property
  if (err === null || typeof err !== "object" || _getProto(err) !== _InternalErrorProto) return false;
  const m = err.message;
  return m === "out of memory" || m === "out of memory in regexp execution";
}
// QuickJS keeps the hook in an internal slot behind its own accessor: ours is always in it.
const _nativePrepare = _getOwn(Error, "prepareStackTrace");
const _setPrepare = _nativePrepare && typeof _nativePrepare.set === "function" ? _nativePrepare.set : null;
Object.defineProperty(Error, "prepareStackTrace", {
  get() { return userPrepare; },
  set(v) { userPrepare = v; },
  enumerable: false, configurable: false,
});
if (_setPrepare) _apply(_setPrepare, Error, [prepareWrapper]);

const LOG_CAP = 4096; // bytes of console output kept per invocation
const LOG_LINE_COST = 16; // every line costs this on top of its length (empty lines too)
const VALUE_CAP = 4096; // characters of JSON return value kept
const ERROR_CAP = 8192; // characters of an error message or stack kept
const MAX_TIMERS = 1000; // pending setTimeout callbacks per invocation
const MAX_FETCHES = 1000; // fetches in flight per invocation
const MAX_BODY = 8 * 1024 * 1024; // characters of one request body
const BARRIER = 12; // microtask ticks granted to each trigger before the next one runs
const SLICE_MS = 20; // a slice stops starting new work after this long

// Tables keyed by id are null-prototype objects: no user-patched Map method, no prototype
// lookup on a miss. Invocation state: {logBytes, truncated, timers, fetches}.
let cur = null; // id of the invocation whose code is running
let unacked = []; // outboxes not yet confirmed by Python (an interrupt can lose a return value)
let unackedHead = 0;
let out = newOutbox(0);
let handlers = _create(null);
const queue = _create(null);
let qHead = 0;
let qTail = 0;
const live = _create(null);
const fetches = _create(null); // fetch id -> {resolve, reject, inv, url}
const timers = _create(null); // timer id -> {fn, args, inv}
let nextFetchId = 1;
let nextTimerId = 1;

function isLive(inv) {
  return inv !== null && live[inv] !== undefined;
}

function newOutbox(seq) {
  // each list is the comma-joined text of its entries; c: invocation id -> ms run
  return { s: seq, d: "", f: "", t: "", l: "", c: _create(null) };
}
function add(list, entry) {
  out[list] = out[list] === "" ? entry : out[list] + "," + entry;
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
    if (typeof after === "number" && after > 0 && after < Infinity) this.retryAfter = after;
  }
}
Object.defineProperty(RetryError, "name", { value: "RetryError" });
const ResourceLimitError = defineError("ResourceLimitError"); // a per-invocation cap (not a global)
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
    let name = "Error", message = "", stack = null, retryAfter = null;
    try { if (typeof e.name === "string" && e.name) name = e.name; } catch (x) {}
    try {
      const after = e.retryAfter; // RetryError(msg, { retryAfter }): a number, or nothing
      if (typeof after === "number" && after > 0 && after < Infinity) retryAfter = after;
    } catch (x) {}
    try { message = typeof e.message === "string" ? e.message : safeString(e); } catch (x) { message = "[unprintable]"; }
    try { if (typeof e.stack === "string") stack = e.stack; } catch (x) {}
    if (name === "InternalError" && _apply(_test, /out of memory/, [message])) name = "MemoryLimitError";
    return {
      name: cutText(name, 200), message: cutText(message, ERROR_CAP),
      stack: stack === null ? null : cutText(stack, ERROR_CAP), retryAfter: retryAfter,
    };
  }
  return { name: "Error", message: cutText(safeString(e), ERROR_CAP), stack: null, retryAfter: null };
}

function safeString(v) {
  try {
    const s = _String(v);
    return typeof s === "string" ? s : "[unprintable]";
  } catch (e) {
    return "[unprintable]";
  }
}

/** The invocation broke a per-invocation cap: it ends now with `message`; throws to stop its code. */
function overCap(message) {
  const err = new ResourceLimitError(message);
  if (isLive(cur)) finish(cur, false, err);
  throw err;
}

// ---- console output: one line charged to the running invocation (console: 15_console.js)
function log(level, msg) {
  if (!isLive(cur)) return; // output from nowhere (top-level code at load) is dropped
  const st = live[cur];
  if (st.truncated) return;
  if (typeof msg !== "string") msg = "[unprintable]";
  if (msg.length > LOG_CAP) msg = _apply(_strSlice, msg, [0, LOG_CAP + 1]);
  const cost = msg.length + LOG_LINE_COST;
  if (st.logBytes + cost > LOG_CAP) {
    msg = _apply(_strSlice, msg, [0, Math.max(0, LOG_CAP - st.logBytes - LOG_LINE_COST)]) + " … [log output truncated at 4 KB]";
    st.truncated = true;
  }
  st.logBytes += cost;
  add("l", "[" + cur + "," + q(level) + "," + q(msg) + "," + num(_now() / 1000) + "]");
}

// ---- timers ---------------------------------------------------------------------------
function setTimeout(fn, ms, ...args) {
  if (typeof fn !== "function") throw new TypeError("setTimeout: callback must be a function");
  const id = nextTimerId++;
  if (!isLive(cur)) return id; // the invocation has ended: the callback would never run
  const st = live[cur];
  if (st.timers >= MAX_TIMERS) overCap(`more than ${MAX_TIMERS} pending setTimeout callbacks`);
  st.timers++;
  timers[id] = { fn: fn, args: args, inv: cur };
  add("t", "[" + id + "," + cur + "," + num(Math.max(0, Number(ms) || 0)) + "]");
  return id;
}
function clearTimeout(id) {
  const tm = timers[id];
  if (tm === undefined) return;
  delete timers[id];
  if (isLive(tm.inv)) live[tm.inv].timers--;
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

// ---- out of memory: the invocation that ran out fails, the context is discarded --------
// Seen by prepareWrapper when QuickJS makes its "out of memory" InternalError, so a user
// `catch` cannot hide it. The heap is then not to be trusted: the answer says "m" and the
// runner rebuilds the context (child.py), whoever was running.
let outOfMemory = false;
let oomInv = null; // the invocation that was running, when one was
const OOM = { name: "MemoryLimitError", message: "the function ran out of memory" };
function noteOutOfMemory() {
  outOfMemory = true; // nothing allocated here: memory has just run out
  if (oomInv === null && cur !== null && live[cur] !== undefined) oomInv = cur;
}

// ---- the dispatcher -------------------------------------------------------------------
function finish(inv, ok, value) {
  if (!isLive(inv)) return; // abandoned (timed out, limited) or already reported
  delete live[inv];
  if (inv === oomInv) { ok = false; value = OOM; } // whatever it did after catching it
  if (ok) {
    let s;
    try { s = _stringify(value === undefined ? null : value); } catch (e) { s = _stringify(safeString(value)); }
    if (typeof s !== "string") s = "null";
    if (s.length > VALUE_CAP) s = _stringify(_apply(_strSlice, s, [0, VALUE_CAP]) + "… [truncated]");
    add("d", "[" + inv + ",1," + q(s) + "]");
  } else {
    const info = errorInfo(value);
    const after = info.retryAfter === null ? "" : "," + info.retryAfter; // a number primitive: no user hook
    add("d", "[" + inv + ",0," + q(info.name) + "," + q(info.message) + "," + (info.stack === null ? "null" : q(info.stack)) + after + "]");
  }
}

async function run(inv, fn, event, settings) {
  let v;
  try {
    v = await fn(event, settings);
  } catch (e) {
    finish(inv, false, e);
    return;
  }
  finish(inv, true, v);
}

function start(t) {
  live[t.i] = { logBytes: 0, truncated: false, timers: 0, fetches: 0 };
  let fn = null;
  for (let k = 0; k < t.h.length; k++) {
    const f = handlers[t.h[k]];
    if (typeof f === "function") { fn = f; break; }
  }
  if (t.h.length === 0) { // a type outside the handler map: a no-op, as in Segment's wrapper
    finish(t.i, true, undefined);
    return;
  }
  if (fn === null) { // Segment's default handler, word for word
    finish(t.i, false, new EventNotSupported(`${t.ty} not supported`));
    return;
  }
  run(t.i, fn, _parse(t.e), _parse(t.s));
}

function settleFetch(t) {
  const f = fetches[t.f];
  if (f === undefined || f.inv !== t.i) return;
  delete fetches[t.f];
  if (isLive(f.inv)) live[f.inv].fetches--;
  if (t.err !== undefined && t.ty) f.reject(new FetchError(t.err, t.ty, t.ty === "system" ? t.code : null));
  else if (t.err !== undefined) f.reject(new FetchError(`request to ${f.url} failed, reason: ${t.err}`, "system", t.code));
  else f.resolve(__makeResponse(t.r, f.manual));
}

function fireTimer(t) {
  const tm = timers[t.t];
  if (tm === undefined || tm.inv !== t.i) return;
  if (tm.every !== undefined && isLive(tm.inv)) {
    add("t", "[" + t.t + "," + tm.inv + "," + num(tm.every) + "]"); // setInterval: due again
  } else {
    delete timers[t.t];
    if (!isLive(tm.inv)) return;
    live[tm.inv].timers--;
  }
  _apply(tm.fn, undefined, tm.args);
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
  delete live[inv];
  for (const id in fetches) if (fetches[id].inv === inv) delete fetches[id];
  for (const id in timers) if (timers[id].inv === inv) delete timers[id];
}

// One already-resolved promise awaited for every barrier tick: the same one tick as
// `await undefined` without a new promise each time (~0.7 instead of ~1.25 µs a tick). Its
// own `constructor` keeps PromiseResolve from looking at a user-patched prototype.
const TICK = Promise.resolve();
_define(TICK, "constructor", { value: Promise });
async function pump() {
  const began = _now();
  while (qHead < qTail) {
    if (_now() - began > SLICE_MS) break; // Python sees `q` > 0 and runs another slice
    const t = queue[qHead];
    delete queue[qHead++];
    const t0 = _now();
    try { apply(t); } catch (e) { if (isLive(cur)) finish(cur, false, e); }
    // let this trigger's own continuations run while `cur` still names it
    for (let k = 0; k < BARRIER; k++) await TICK;
    if (oomInv !== null && isLive(oomInv)) finish(oomInv, false, OOM);
    if (cur !== null) out.c[cur] = (out.c[cur] || 0) + (_now() - t0);
  }
}

/** The slice answer: every unacknowledged outbox, as one JSON text (answers.py parses it). */
function answer() {
  let u = "";
  for (let k = unackedHead; k < unacked.length; k++) {
    const o = unacked[k];
    let c = "";
    for (const inv in o.c) c = (c === "" ? "" : c + ",") + "[" + inv + "," + num(o.c[inv]) + "]";
    const box = '{"s":' + o.s + ',"d":[' + o.d + '],"f":[' + o.f + '],"t":[' + o.t + '],"l":[' + o.l + '],"c":[' + c + "]}";
    u = u === "" ? box : u + "," + box;
  }
  return '{"u":[' + u + '],"q":' + (qTail - qHead) + (outOfMemory ? ',"m":1}' : "}");
}

const dispatcher = Object.freeze({
  /** After the user script ran: find its handlers (declarations or top-level consts). */
  bind(found) {
    if (outOfMemory) return "!oom"; // the top-level code ran out of memory (and caught it): sandbox.py fails the load
    handlers = _create(null);
    let names = ""; // a string, not an array: nothing user-patched serializes it
    const keys = _keys(found);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (typeof found[k] === "function") { handlers[k] = found[k]; names = names === "" ? k : names + "," + k; }
    }
    return names;
  },
  /**
   * Run one slice: the triggers passed as dukpy.t. Returns (when dukpy serializes it,
   * after the promise jobs ran) every outbox Python has not acknowledged (seq > ack), so
   * nothing is lost when an interrupt ate a return value.
   */
  slice(seq, ack) {
    outOfMemory = false; // "m" says: during this slice (a context that said it is rebuilt)
    oomInv = null;
    while (unackedHead < unacked.length && unacked[unackedHead].s <= ack) unacked[unackedHead++] = null;
    if (unackedHead === unacked.length) { unacked = []; unackedHead = 0; }
    out = newOutbox(seq);
    _define(unacked, unacked.length, { value: out, writable: true, enumerable: true, configurable: true });
    cur = null;
    const kw = __kw;
    __kw = null;
    if (kw && kw.t) for (let k = 0; k < kw.t.length; k++) queue[qTail++] = kw.t[k];
    pump();
    const reply = _create(null);
    reply.toJSON = answer;
    return reply;
  },
  /** After an interrupt: hand the host what the lost slice wrote, before any job runs. */
  salvage() {
    host("salvage", answer());
  },
});
Object.defineProperty(globalThis, "__segfuncd", { value: dispatcher, enumerable: false, configurable: false, writable: false });
