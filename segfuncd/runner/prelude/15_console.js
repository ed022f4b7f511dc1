// segfuncd prelude: `console`, as Node 20's Console writes it.
//
// Lines of plain strings, numbers, booleans, null and undefined are formatted here; anything
// else (objects, `%` substitutions, console.table/dir) loads lazy/inspect.js, a port of Node's
// util.inspect / util.format, on first use, so a function that logs text pays nothing for it.
// Levels: log/info/debug/dir/table/count/time*/group go out as "log"/"info"/"debug" (Node's
// stdout), warn/assert as "warn", error/trace as "error" (stderr). Timer labels, counters and
// the group indentation belong to the invocation, so concurrent events do not mix them up.
// What Node prints as a process warning (a timer label that does not exist...) is a "warn"
// line `Warning: ...`. Once an invocation's 4 KB of output are used up, its console calls
// still keep their state but format nothing (so a custom inspect function is not called).

let __inspectMod = null;
function inspectMod() {
  if (__inspectMod === null) {
    __inspectMod = __indirectEval(hostx("source", "inspect"))({ URL, URLSearchParams, Buffer });
  }
  return __inspectMod;
}

function plainPart(v) {
  switch (typeof v) {
    case "string": return v;
    case "number": return v === 0 && 1 / v < 0 ? "-0" : "" + v;
    case "boolean": return v ? "true" : "false";
    case "undefined": return "undefined";
    case "bigint": return v + "n";
    default: return v === null ? "null" : null;
  }
}

/** util.format(...args): fast for plain values, else Node's formatter. */
function formatArgs(args) {
  const n = args.length;
  if (n === 1 && typeof args[0] === "string") return args[0];
  if (!(n > 1 && typeof args[0] === "string" && args[0].indexOf("%") >= 0)) {
    let s = "";
    let k = 0;
    for (; k < n; k++) {
      const part = plainPart(args[k]);
      if (part === null) break;
      s = k === 0 ? part : s + " " + part;
    }
    if (k === n) return s;
  }
  return inspectMod().formatWithOptions(undefined, args);
}

/** The values joined as util.format joins the ones after its format string. */
function formatRest(args) {
  let s = "";
  for (let k = 0; k < args.length; k++) {
    const v = args[k];
    let part = plainPart(v); // for these, what inspect() would print
    if (part === null) part = inspectMod().inspect(v);
    s = k === 0 ? part : s + " " + part;
  }
  return s;
}

const __noConsole = { group: "", times: null, counts: null };
function consoleState() {
  if (!isLive(cur)) return __noConsole;
  const st = live[cur];
  if (st.console === undefined) st.console = { group: "", times: new Map(), counts: new Map() };
  return st.console;
}

function consoleWrite(level, text) {
  const indent = consoleState().group;
  if (indent.length !== 0) {
    if (text.includes("\n")) text = text.replace(/\n/g, `\n${indent}`);
    text = indent + text;
  }
  log(level, text);
}

/** Nothing would be kept (no invocation, or its 4 KB are used up): skip the formatting too. */
function consoleMuted() {
  return !isLive(cur) || live[cur].truncated;
}
function emit(level, args) {
  if (!consoleMuted()) consoleWrite(level, formatArgs(args));
}

function consoleWarning(text) {
  log("warn", "Warning: " + text);
}

// lib/internal/console/constructor.js formatTime
function formatDuration(ms) {
  let hours = 0, minutes = 0, seconds = 0;
  if (ms >= 1000) {
    if (ms >= 60000) {
      if (ms >= 3600000) { hours = Math.floor(ms / 3600000); ms = ms % 3600000; }
      minutes = Math.floor(ms / 60000);
      ms = ms % 60000;
    }
    seconds = ms / 1000;
  }
  if (hours !== 0 || minutes !== 0) {
    const parts = seconds.toFixed(3).split(".");
    const pad = (v) => `${v}`.padStart(2, "0");
    const res = hours !== 0 ? `${hours}:${pad(minutes)}` : minutes;
    return `${res}:${pad(parts[0])}.${parts[1]} (${hours !== 0 ? "h:m" : ""}m:ss.mmm)`;
  }
  if (seconds !== 0) return `${seconds.toFixed(3)}s`;
  return `${Number(ms.toFixed(3))}ms`;
}

function timeLogImpl(name, label, data) {
  const times = consoleState().times;
  const began = times === null ? undefined : times.get(label);
  if (began === undefined) {
    consoleWarning(`No such label '${label}' for console.${name}()`);
    return false;
  }
  const text = `${label}: ${formatDuration(_now() - began)}`;
  if (!consoleMuted()) consoleWrite("log", data.length === 0 ? text : text + " " + formatRest(data));
  return true;
}

const console = Object.freeze({
  log(...args) { emit("log", args); },
  info(...args) { emit("info", args); },
  debug(...args) { emit("debug", args); },
  dirxml(...args) { emit("log", args); },
  warn(...args) { emit("warn", args); },
  error(...args) { emit("error", args); },
  dir(object, options) {
    if (consoleMuted()) return;
    consoleWrite("log", inspectMod().inspect(object, { customInspect: false, ...options }));
  },
  time(label = "default") {
    label = `${label}`;
    const times = consoleState().times;
    if (times === null) return;
    if (times.has(label)) {
      consoleWarning(`Label '${label}' already exists for console.time()`);
      return;
    }
    times.set(label, _now());
  },
  timeEnd(label = "default") {
    label = `${label}`;
    if (timeLogImpl("timeEnd", label, [])) consoleState().times.delete(label);
  },
  timeLog(label = "default", ...data) {
    timeLogImpl("timeLog", `${label}`, data);
  },
  trace(...args) {
    if (consoleMuted()) return;
    const message = formatArgs(args);
    let frames = "";
    try {
      const lines = String(new Error().stack || "").replace(/\n$/, "").split("\n").slice(1);
      while (lines.length && /^ {4}at (?:run|start|apply|pump|slice|fireTimer|settleFetch|<eval>) \(<dukpy>:\d+:\d+\)$/.test(lines[lines.length - 1])) lines.pop();
      frames = lines.length ? "\n" + lines.join("\n") : "";
    } catch (e) { frames = ""; }
    consoleWrite("error", (message === "" ? "Trace" : "Trace: " + message) + frames);
  },
  assert(expression, ...args) {
    if (!expression) {
      args[0] = `Assertion failed${args.length === 0 ? "" : `: ${args[0]}`}`;
      emit("warn", args);
    }
  },
  clear() {},
  count(label = "default") {
    label = `${label}`;
    const counts = consoleState().counts;
    if (counts === null) return;
    const n = (counts.get(label) || 0) + 1;
    counts.set(label, n);
    consoleWrite("log", `${label}: ${n}`);
  },
  countReset(label = "default") {
    const counts = consoleState().counts;
    if (counts === null) return;
    if (!counts.has(label)) {
      consoleWarning(`Count for '${label}' does not exist`);
      return;
    }
    counts.delete(`${label}`);
  },
  group(...data) {
    if (data.length > 0) emit("log", data);
    const st = consoleState();
    if (st !== __noConsole) st.group += "  ";
  },
  groupCollapsed(...data) {
    console.group(...data);
  },
  groupEnd() {
    const st = consoleState();
    if (st !== __noConsole) st.group = st.group.slice(0, Math.max(0, st.group.length - 2));
  },
  table(tabularData, properties) {
    if (consoleMuted()) return;
    const text = inspectMod().table(tabularData, properties);
    if (text === null) consoleWrite("log", formatArgs([tabularData]));
    else consoleWrite("log", text);
  },
  timeStamp() {},
  profile() {},
  profileEnd() {},
});
