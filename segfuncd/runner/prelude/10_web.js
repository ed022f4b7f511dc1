// segfuncd prelude, part 1: URL, URLSearchParams, Headers, Request, Response, fetch, atob, btoa.
//
// fetch() never blocks: it queues a request description in the slice's outbox and returns
// a pending Promise; the runner performs the request with httpx and settles the Promise in a
// later slice (see settleFetch in 00_core.js). Semantics follow node-fetch v2, which
// Segment's runtime used: non-2xx responses resolve, network failures reject with FetchError.

// ---- URLSearchParams ------------------------------------------------------------------
function formEncode(s) {
  return encodeURIComponent(s)
    .replace(/%20/g, "+")
    .replace(/[!'()~]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}
function formDecode(s) {
  try { return decodeURIComponent(s.replace(/\+/g, " ")); } catch (e) { return s; }
}

class URLSearchParams {
  constructor(init) {
    this._list = [];
    this._url = null;
    if (init === undefined || init === null) return;
    if (typeof init === "string") {
      this._parse(init);
    } else if (init instanceof URLSearchParams) {
      this._list = init._list.map((p) => [p[0], p[1]]);
    } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
        this._list.push([String(p[0]), String(p[1])]);
      }
    } else if (typeof init === "object") {
      for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
    } else {
      this._parse(String(init));
    }
  }
  _parse(s) {
    this._list = [];
    if (s.startsWith("?")) s = s.slice(1);
    for (const part of s.split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      const k = i < 0 ? part : part.slice(0, i);
      const v = i < 0 ? "" : part.slice(i + 1);
      this._list.push([formDecode(k), formDecode(v)]);
    }
  }
  _update() {
    if (this._url) {
      const s = this.toString();
      this._url._query = s ? s : null;
    }
  }
  get size() { return this._list.length; }
  append(k, v) { this._list.push([String(k), String(v)]); this._update(); }
  delete(k) { k = String(k); this._list = this._list.filter((p) => p[0] !== k); this._update(); }
  get(k) { k = String(k); const p = this._list.find((p) => p[0] === k); return p ? p[1] : null; }
  getAll(k) { k = String(k); return this._list.filter((p) => p[0] === k).map((p) => p[1]); }
  has(k) { k = String(k); return this._list.some((p) => p[0] === k); }
  set(k, v) {
    k = String(k); v = String(v);
    const i = this._list.findIndex((p) => p[0] === k);
    if (i < 0) this._list.push([k, v]);
    else { this._list[i][1] = v; this._list = this._list.filter((p, j) => j <= i || p[0] !== k); }
    this._update();
  }
  sort() { this._list.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); this._update(); }
  forEach(fn, thisArg) { for (const [k, v] of this._list) fn.call(thisArg, v, k, this); }
  keys() { return this._list.map((p) => p[0])[Symbol.iterator](); }
  values() { return this._list.map((p) => p[1])[Symbol.iterator](); }
  entries() { return this._list.map((p) => [p[0], p[1]])[Symbol.iterator](); }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return this._list.map((p) => formEncode(p[0]) + "=" + formEncode(p[1])).join("&"); }
}

// ---- URL (WHATWG-style, for the schemes functions use) ----------------------------------
const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
const PATH_ENC = /[\u0000-\u0020"#<>?`{}\u007f-\uffff]/g;
const QUERY_ENC = /[\u0000-\u0020"#<>'\u007f-\uffff]/g;
const FRAG_ENC = /[\u0000-\u0020"<>`\u007f-\uffff]/g;
function pctEncode(s, re) {
  return s.replace(re, (c) => (c === "'" ? "%27" : encodeURIComponent(c))); // encodeURIComponent keeps '
}
function normPath(path) {
  const out = [];
  const segs = path.split("/");
  for (let i = 1; i < segs.length; i++) {
    const seg = segs[i];
    const last = i === segs.length - 1;
    if (seg === "..") { out.pop(); if (last) out.push(""); }
    else if (seg === ".") { if (last) out.push(""); }
    else out.push(seg);
  }
  return "/" + out.join("/");
}

// ---- IDNA: hosts as WHATWG's domain-to-ASCII makes them (UTS 46 mapping, then punycode) ---
function punycode(label) {
  const cps = Array.from(label, (c) => c.codePointAt(0));
  let out = cps.filter((c) => c < 0x80).map((c) => String.fromCharCode(c)).join("");
  const basic = out.length;
  let h = basic;
  if (basic) out += "-";
  let n = 128, delta = 0, bias = 72;
  const digit = (d) => String.fromCharCode(d < 26 ? 97 + d : 22 + d);
  const adapt = (d, count, first) => {
    d = first ? Math.floor(d / 700) : d >> 1;
    d += Math.floor(d / count);
    let k = 0;
    for (; d > 455; k += 36) d = Math.floor(d / 35);
    return k + Math.floor((36 * d) / (d + 38));
  };
  while (h < cps.length) {
    const m = Math.min(...cps.filter((c) => c >= n));
    delta += (m - n) * (h + 1);
    n = m;
    for (const c of cps) {
      if (c < n) delta++;
      if (c === n) {
        let q = delta;
        for (let k = 36; ; k += 36) {
          const t = k <= bias ? 1 : k >= bias + 26 ? 26 : k - bias;
          if (q < t) break;
          out += digit(t + ((q - t) % (36 - t)));
          q = Math.floor((q - t) / (36 - t));
        }
        out += digit(q);
        bias = adapt(delta, h + 1, h === basic);
        delta = 0;
        h++;
      }
    }
    delta++;
    n++;
  }
  return out;
}
function domainToASCII(host) {
  if (/^[\x00-\x7f]*$/.test(host)) return host.toLowerCase();
  // UTS 46 maps compatibility forms (full-width letters, ideographic full stops) and case
  const mapped = host.normalize("NFKC").toLowerCase().normalize("NFC").replace(/[\u3002\uff0e\uff61]/g, ".");
  return mapped.split(".").map((l) => (/^[\x00-\x7f]*$/.test(l) ? l : "xn--" + punycode(l))).join(".");
}

class URL {
  constructor(input, base) {
    input = String(input).trim();
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(input);
    if (m) {
      this._parseAbsolute(m[1].toLowerCase() + ":", m[2], input);
    } else if (base !== undefined) {
      const b = base instanceof URL ? base : new URL(base);
      this._resolve(b, input);
    } else {
      throw new TypeError(`Invalid URL: ${input}`);
    }
  }
  _parseAbsolute(protocol, rest, input) {
    this._protocol = protocol;
    const special = protocol in SPECIAL;
    rest = rest.replace(/\\/g, special ? "/" : "\\");
    let hash = null, query = null;
    let i = rest.indexOf("#");
    if (i >= 0) { hash = rest.slice(i + 1); rest = rest.slice(0, i); }
    i = rest.indexOf("?");
    if (i >= 0) { query = rest.slice(i + 1); rest = rest.slice(0, i); }
    this._username = ""; this._password = ""; this._hostname = ""; this._port = "";
    if (rest.startsWith("//") || (special && protocol !== "file:")) {
      rest = rest.replace(/^\/*/, "");
      let j = rest.indexOf("/");
      let authority = j < 0 ? rest : rest.slice(0, j);
      let path = j < 0 ? "" : rest.slice(j);
      const at = authority.lastIndexOf("@");
      if (at >= 0) {
        const cred = authority.slice(0, at);
        authority = authority.slice(at + 1);
        const c = cred.indexOf(":");
        this._username = pctEncode(c < 0 ? cred : cred.slice(0, c), PATH_ENC);
        this._password = c < 0 ? "" : pctEncode(cred.slice(c + 1), PATH_ENC);
      }
      const pm = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(authority);
      if (!pm) throw new TypeError(`Invalid URL: ${input}`);
      this._hostname = pm[1].startsWith("[") ? pm[1].toLowerCase() : domainToASCII(pm[1]);
      if (special && protocol !== "file:" && !this._hostname) throw new TypeError(`Invalid URL: ${input}`);
      if (/[\s<>^|%]/.test(this._hostname) && !/%[0-9a-f]{2}/i.test(this._hostname)) throw new TypeError(`Invalid URL: ${input}`);
      let port = pm[2] || "";
      if (port !== "") {
        const n = Number(port);
        if (n > 65535) throw new TypeError(`Invalid URL: ${input}`);
        port = String(n);
      }
      this._port = port === SPECIAL[protocol] ? "" : port;
      this._path = special ? normPath(pctEncode(path || "/", PATH_ENC)) : pctEncode(path, PATH_ENC);
      this._opaque = false;
    } else {
      this._path = pctEncode(rest, PATH_ENC);
      this._opaque = !rest.startsWith("/");
    }
    this._query = query === null ? null : pctEncode(query, QUERY_ENC);
    this._hash = hash === null ? null : pctEncode(hash, FRAG_ENC);
    this._sp = null;
  }
  _resolve(b, rel) {
    Object.assign(this, { _protocol: b._protocol, _username: b._username, _password: b._password,
      _hostname: b._hostname, _port: b._port, _opaque: false, _sp: null });
    rel = rel.replace(/\\/g, "/");
    if (rel.startsWith("//")) { this._parseAbsolute(b._protocol, rel, rel); return; }
    let hash = null, query = null;
    let i = rel.indexOf("#");
    if (i >= 0) { hash = rel.slice(i + 1); rel = rel.slice(0, i); }
    i = rel.indexOf("?");
    if (i >= 0) { query = rel.slice(i + 1); rel = rel.slice(0, i); }
    if (rel === "") {
      this._path = b._path;
      this._query = query === null ? b._query : pctEncode(query, QUERY_ENC);
    } else {
      const dir = rel.startsWith("/") ? "" : b._path.slice(0, b._path.lastIndexOf("/") + 1);
      this._path = normPath(pctEncode(dir + rel, PATH_ENC).replace(/^(?!\/)/, "/"));
      this._query = query === null ? null : pctEncode(query, QUERY_ENC);
    }
    this._hash = hash === null ? null : pctEncode(hash, FRAG_ENC);
  }
  get protocol() { return this._protocol; }
  set protocol(v) { v = String(v).replace(/:.*$/, "").toLowerCase(); if (v) this._protocol = v + ":"; }
  get username() { return this._username; }
  set username(v) { this._username = pctEncode(String(v), PATH_ENC); }
  get password() { return this._password; }
  set password(v) { this._password = pctEncode(String(v), PATH_ENC); }
  get hostname() { return this._hostname; }
  set hostname(v) { v = String(v); this._hostname = v.startsWith("[") ? v.toLowerCase() : domainToASCII(v); }
  get port() { return this._port; }
  set port(v) { v = String(v); this._port = v === SPECIAL[this._protocol] ? "" : v; }
  get host() { return this._port ? `${this._hostname}:${this._port}` : this._hostname; }
  set host(v) { const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(String(v)); if (m) { this.hostname = m[1]; if (m[2] !== undefined) this.port = m[2]; } }
  get origin() { return this._protocol in SPECIAL && this._protocol !== "file:" ? `${this._protocol}//${this.host}` : "null"; }
  get pathname() { return this._path; }
  set pathname(v) { v = String(v); this._path = normPath(pctEncode(v.startsWith("/") ? v : "/" + v, PATH_ENC)); }
  get search() { return this._query ? "?" + this._query : ""; }
  set search(v) { v = String(v).replace(/^\?/, ""); this._query = v ? pctEncode(v, QUERY_ENC) : null; if (this._sp) this._sp._parse(v); }
  get searchParams() {
    if (!this._sp) { this._sp = new URLSearchParams(this._query || ""); this._sp._url = this; }
    return this._sp;
  }
  get hash() { return this._hash ? "#" + this._hash : ""; }
  set hash(v) { v = String(v).replace(/^#/, ""); this._hash = v ? pctEncode(v, FRAG_ENC) : null; }
  get href() {
    const auth = this._username || this._password ? this._username + (this._password ? ":" + this._password : "") + "@" : "";
    const hier = this._opaque ? this._path : `//${auth}${this.host}${this._path}`;
    return `${this._protocol}${hier}${this._query !== null ? "?" + this._query : ""}${this._hash !== null ? "#" + this._hash : ""}`;
  }
  set href(v) { const u = new URL(v); Object.assign(this, u); }
  toString() { return this.href; }
  toJSON() { return this.href; }
  static canParse(u, b) { try { new URL(u, b); return true; } catch (e) { return false; } }
}

// ---- Headers ---------------------------------------------------------------------------
function checkHeaderName(name) {
  name = String(name);
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError(`${name} is not a legal HTTP header name`);
  return name.toLowerCase();
}
class Headers {
  constructor(init) {
    this._map = new Map(); // lower-case name -> [values]
    if (init === undefined || init === null) return;
    if (init instanceof Headers) {
      for (const [k, v] of init._map) this._map.set(k, v.slice());
    } else if (typeof init[Symbol.iterator] === "function") {
      for (const pair of init) {
        const p = Array.from(pair);
        if (p.length !== 2) throw new TypeError("Header pairs must contain exactly two items");
        this.append(p[0], p[1]);
      }
    } else if (typeof init === "object") {
      for (const k of Object.keys(init)) this.append(k, init[k]);
    } else {
      throw new TypeError("Provided initializer must be an object");
    }
  }
  append(k, v) { k = checkHeaderName(k); const a = this._map.get(k); if (a) a.push(String(v)); else this._map.set(k, [String(v)]); }
  set(k, v) { this._map.set(checkHeaderName(k), [String(v)]); }
  get(k) { const a = this._map.get(checkHeaderName(k)); return a ? a.join(", ") : null; }
  has(k) { return this._map.has(checkHeaderName(k)); }
  delete(k) { this._map.delete(checkHeaderName(k)); }
  raw() { const o = {}; for (const [k, v] of this._map) o[k] = v.slice(); return o; }
  _sorted() { return Array.from(this._map.keys()).sort().map((k) => [k, this._map.get(k).join(", ")]); }
  forEach(fn, thisArg) { for (const [k, v] of this._sorted()) fn.call(thisArg, v, k, this); }
  keys() { return this._sorted().map((p) => p[0])[Symbol.iterator](); }
  values() { return this._sorted().map((p) => p[1])[Symbol.iterator](); }
  entries() { return this._sorted()[Symbol.iterator](); }
  [Symbol.iterator]() { return this.entries(); }
  _pairs() { const out = []; for (const [k, vs] of this._map) for (const v of vs) out.push([k, v]); return out; }
}

// ---- bodies ----------------------------------------------------------------------------
/** A form-data FormData (ours, or one shaped like it): node-fetch sends its bytes with a boundary type. */
function isMultipart(body) {
  return body !== null && typeof body === "object" && typeof body.getBoundary === "function" && typeof body.getBuffer === "function";
}
/** Normalise a body to {text|bin, type}; bin is a latin1 string of raw bytes. */
function encodeBody(body) {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") return { text: body, type: "text/plain;charset=UTF-8" };
  if (body instanceof URLSearchParams) return { text: body.toString(), type: "application/x-www-form-urlencoded;charset=UTF-8" };
  if (body instanceof ArrayBuffer) body = new Uint8Array(body);
  if (ArrayBuffer.isView(body)) {
    const u8 = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return { bin: __latin1FromBytes(u8), type: null };
  }
  if (isMultipart(body)) {
    const u8 = typeof body._wire === "function" ? body._wire() : body.getBuffer();
    return { bin: __latin1FromBytes(u8), type: "multipart/form-data;boundary=" + body.getBoundary() };
  }
  return { text: safeString(body), type: "text/plain;charset=UTF-8" };
}

// A body is held as text (`_text`) or as exact bytes (`_bin`, latin1), as it came: text()
// decodes bytes as UTF-8 and buffer() encodes text as UTF-8, as node-fetch 2 does.
class Body {
  _initBody(text, bin) {
    this._text = text === null || text === undefined ? null : String(text);
    this._bin = bin === null || bin === undefined ? null : bin;
    this.bodyUsed = false;
  }
  get body() { return this._text !== null ? this._text : this._bin; }
  _consume() {
    if (this.bodyUsed) return Promise.reject(new TypeError(`body used already for: ${this.url}`));
    this.bodyUsed = true;
    return Promise.resolve();
  }
  _textNow() {
    if (this._text === null) this._text = this._bin === null ? "" : utf8Decode(bytesFromLatin1(this._bin));
    return this._text;
  }
  _bufferNow() {
    return this._bin !== null ? Buffer.from(this._bin, "latin1") : Buffer.from(this._text === null ? "" : this._text, "utf8");
  }
  text() { return this._consume().then(() => this._textNow()); }
  json() {
    return this._consume().then(() => {
      try { return JSON.parse(this._textNow()); } catch (e) {
        throw new FetchError(`invalid json response body at ${this.url} reason: ${e.message}`, "invalid-json");
      }
    });
  }
  arrayBuffer() {
    return this._consume().then(() => { const b = this._bufferNow(); return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength); });
  }
  buffer() { return this._consume().then(() => this._bufferNow()); }
}

/** node-fetch 2 hands the URL to Node's legacy url.parse, which escapes these after WHATWG parsing. */
function legacyEscape(href) {
  return href.replace(/[\t\n\r "'<>\\^`{|}]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0"));
}

// A function fetches the same few URLs over and over: each URL text's parse (~15 µs of
// WHATWG parsing in JS) is kept, per context, as the href node-fetch sends (a string: the
// collector QuickJS runs twice per slice walks objects, not strings, so 256 entries cost a
// slice nothing; as records they cost it ~40 µs). Entries live in a null-prototype table
// read by name (no user-patchable accessor on the way), and only URLs of up to
// FETCH_URL_CACHED characters are kept.
const FETCH_URLS_MAX = 64;
const FETCH_URL_CACHED = 2048;
let fetchUrls = _create(null);
let fetchUrlCount = 0;
function fetchUrl(url) {
  let href = fetchUrls[url];
  if (href === undefined) {
    let parsed;
    try { parsed = new URL(url); } catch (e) { throw new TypeError(`Only absolute URLs are supported`); }
    href = legacyEscape(parsed.href);
    if (url.length > FETCH_URL_CACHED) return href;
    if (fetchUrlCount >= FETCH_URLS_MAX) { fetchUrls = _create(null); fetchUrlCount = 0; }
    fetchUrls[url] = href;
    fetchUrlCount++;
  }
  return href;
}

/** "http:" of "http://h/p": a WHATWG href starts with its scheme and a colon. */
function schemeOf(href) {
  for (let i = 0; i < href.length && i < 64; i++) if (href[i] === ":") return _apply(_strSlice, href, [0, i + 1]);
  return "";
}

class Request extends Body {
  constructor(input, init) {
    super();
    init = init || {};
    const src = input instanceof Request ? input : null;
    const url = src ? src.url : input instanceof URL ? input.href : String(input);
    this.url = fetchUrl(url);
    // fetch() needs only the scheme; keep it rather than parse the URL a second time
    Object.defineProperty(this, "_protocol", { value: schemeOf(this.url) });
    this.method = String(init.method || (src ? src.method : "GET")).toUpperCase();
    this.headers = new Headers(init.headers !== undefined ? init.headers : src ? src.headers : undefined);
    const body = init.body !== undefined ? init.body : src ? src._raw : undefined;
    if (body !== undefined && body !== null && (this.method === "GET" || this.method === "HEAD")) {
      throw new TypeError("Request with GET/HEAD method cannot have body");
    }
    this._raw = body;
    const enc = encodeBody(body);
    this._initBody(enc && enc.text, enc && enc.bin);
    this._bodyType = enc ? enc.type : null; // fetch() sends _text/_bin with this type
    this.redirect = init.redirect || (src ? src.redirect : "follow");
    this.follow = init.follow !== undefined ? init.follow : src ? src.follow : 20;
    this.timeout = init.timeout || (src ? src.timeout : 0);
    this.signal = init.signal || null;
  }
  clone() { return new Request(this); }
}

class Response extends Body {
  constructor(body, init) {
    super();
    init = init || {};
    this.status = init.status === undefined ? 200 : Number(init.status);
    this.statusText = init.statusText === undefined ? "" : String(init.statusText);
    this.headers = new Headers(init.headers);
    this.url = init.url || "";
    this.redirected = !!init.redirected;
    this.type = "default";
    const enc = encodeBody(body);
    this._initBody(enc && enc.text, enc && enc.bin);
  }
  get ok() { return this.status >= 200 && this.status < 300; }
  clone() {
    if (this.bodyUsed) throw new TypeError("cannot clone body after it is used");
    const r = new Response(null, { status: this.status, statusText: this.statusText, headers: this.headers, url: this.url, redirected: this.redirected });
    r._initBody(this._text, this._bin);
    return r;
  }
  static json(data, init) {
    const r = new Response(JSON.stringify(data), init);
    if (!r.headers.has("content-type")) r.headers.set("content-type", "application/json");
    return r;
  }
}

/** Headers from the host's [[name, value], ...] (an HTTP parser's output: no name to check). */
function wireHeaders(pairs) {
  const h = new Headers();
  const map = h._map;
  for (let i = 0; i < pairs.length; i++) {
    const k = pairs[i][0].toLowerCase();
    const a = map.get(k);
    if (a) a.push(pairs[i][1]); else map.set(k, [pairs[i][1]]);
  }
  return h;
}

/** The Response of a settled fetch: `b` the UTF-8 text, `bb` the exact bytes when they are not UTF-8. */
function __makeResponse(r, manual) {
  // what `new Response(null, {...})` makes, in the same property order, without the empty
  // Headers the constructor would build only to be replaced (~3 µs an answer)
  const res = _create(Response.prototype);
  res.status = r.st;
  res.statusText = r.tx;
  res.headers = wireHeaders(r.h);
  res.url = r.u;
  res.redirected = r.rd;
  res.type = "default";
  res._initBody(r.bb === undefined ? r.b : null, r.bb);
  if (r.bb !== undefined) res._text = r.b; // the host decoded it already
  if (manual && REDIRECT_STATUSES.includes(res.status) && res.headers.has("location")) {
    // node-fetch: a manual redirect's Location is made absolute (left alone when it is not a URL)
    try { res.headers.set("location", new URL(res.headers.get("location"), res.url).href); } catch (e) { /* kept */ }
  }
  return res;
}
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

// ---- fetch -----------------------------------------------------------------------------
function fetch(input, init) {
  let req;
  try {
    req = new Request(input, init);
  } catch (e) {
    return Promise.reject(e);
  }
  const proto = req._protocol;
  if (proto !== "http:" && proto !== "https:") {
    return Promise.reject(new TypeError("Only HTTP(S) protocols are supported"));
  }
  if (!isLive(cur)) {
    return Promise.reject(new FetchError(`request to ${req.url} failed, reason: the invocation has ended`, "system"));
  }
  const st = live[cur];
  if (st.fetches >= MAX_FETCHES) overCap(`more than ${MAX_FETCHES} fetches in flight`);
  const binary = req._bin !== null; // the body as the Request encoded it (once)
  const raw = binary ? req._bin : req._text;
  if (raw !== null && str(raw).length > MAX_BODY) overCap(`request body of ${str(raw).length} characters is over the ${MAX_BODY >> 20} MB limit`);
  if (req._bodyType && !req.headers.has("content-type")) req.headers.set("content-type", req._bodyType);
  let headers = "";
  for (const [k, v] of req.headers._pairs()) headers = (headers === "" ? "" : headers + ",") + "[" + q(str(k)) + "," + q(str(v)) + "]";
  const id = nextFetchId++;
  const p = new Promise((resolve, reject) => {
    fetches[id] = { resolve: resolve, reject: reject, inv: cur, url: req.url, manual: req.redirect === "manual" };
  });
  st.fetches++;
  add("f", "[" + id + "," + cur + "," + q(str(req.method)) + "," + q(str(req.url)) + ",[" + headers + "],"
    + (raw === null ? "null" : q(str(raw))) + "," + (binary ? 1 : 0) + ","
    + redirectWire(req) + "," + num(Number(req.timeout) || 0) + "]");
  return p;
}

/** The wire's redirect field: n >= 0 follows up to n redirects, -1 is manual, -2 error. */
function redirectWire(req) {
  if (req.redirect === "error") return -2;
  if (req.redirect !== "follow") return -1; // node-fetch returns the 3xx for an unknown mode too
  const n = Math.floor(Number(req.follow));
  return Number.isNaN(n) ? 1000 : n >= 0 ? Math.min(n, 1000) : 0;
}

// ---- atob / btoa -----------------------------------------------------------------------
const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64R = (() => { const r = {}; for (let i = 0; i < 64; i++) r[B64[i]] = i; r["-"] = 62; r["_"] = 63; return r; })();
// No lookup table beyond B64 itself: a context's objects are walked by QuickJS's collector
// twice per slice (dukpy runs it on every eval), and a 4096-entry pair table cost every
// slice ~40 µs once any btoa had made it, more than it ever saved.
function __b64encode(bin) {
  let s = "";
  let i = 0;
  for (; i + 2 < bin.length; i += 3) {
    const n = (bin.charCodeAt(i) << 16) | (bin.charCodeAt(i + 1) << 8) | bin.charCodeAt(i + 2);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  if (i < bin.length) {
    const a = bin.charCodeAt(i), b = i + 1 < bin.length ? bin.charCodeAt(i + 1) : 0;
    const n = (a << 16) | (b << 8);
    s += B64[n >> 18] + B64[(n >> 12) & 63] + (i + 1 < bin.length ? B64[(n >> 6) & 63] : "=") + "=";
  }
  return s;
}
function __b64decode(s, strict) {
  s = String(s).replace(/[\t\n\f\r ]/g, "");
  if (strict) {
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s)) {
      const e = new Error("The string to be decoded is not correctly encoded."); e.name = "InvalidCharacterError"; throw e;
    }
  } else {
    const eq = s.indexOf("="); // Node's Buffer stops decoding at the first padding character
    s = (eq >= 0 ? s.slice(0, eq) : s).replace(/[^A-Za-z0-9+/\-_]/g, "");
  }
  let out = "";
  let bits = 0, acc = 0;
  for (let i = 0; i < s.length; i++) {
    acc = (acc << 6) | B64R[s[i]];
    bits += 6;
    if (bits >= 8) { bits -= 8; out += String.fromCharCode((acc >> bits) & 255); }
  }
  return out;
}
// As the `btoa` 1.2 / `atob` 2.1 npm packages Segment's runtime ships: Buffer-based, so
// neither throws on a string (btoa keeps each character's low byte, atob skips what is not base64).
function btoa(s) {
  if (s instanceof Buffer) return s.toString("base64");
  if (s === undefined || s === null) throw new TypeError(`Cannot read properties of ${s} (reading 'toString')`);
  const t = String(s.toString());
  if (!_apply(_test, NOT_LATIN1, [t])) return __b64encode(t); // the usual case: nothing to cut
  let bin = "";
  for (let i = 0; i < t.length; i++) bin += String.fromCharCode(t.charCodeAt(i) & 255);
  return __b64encode(bin);
}
const NOT_LATIN1 = /[^\x00-\xff]/;
function atob(s) {
  if (typeof s === "string") return __b64decode(s, false);
  if (s instanceof ArrayBuffer || ArrayBuffer.isView(s) || Array.isArray(s)) return Buffer.from(s).toString("latin1");
  const got = s === undefined || s === null ? `Received ${s}` : typeof s === "object" ? `Received an instance of ${(s.constructor && s.constructor.name) || "Object"}` : `Received type ${typeof s} (${safeString(s)})`;
  const e = new TypeError(`The first argument must be of type string or an instance of Buffer, ArrayBuffer, or Array or an Array-like Object. ${got}`);
  e.code = "ERR_INVALID_ARG_TYPE";
  throw e;
}
