// FormData as the `form-data` npm package (4.x, the API 2.x shares) builds multipart bodies:
// append(field, value, filename | {filename, filepath, contentType, header, knownLength}),
// getHeaders(), getBoundary() / setBoundary(), getBuffer(), getLengthSync(), getLength(cb).
// A form passed as a fetch() body goes out as form-data streams it (10_web.js encodeBody),
// with node-fetch's `multipart/form-data;boundary=...` type unless the function set one.
// Values are strings, numbers or bytes (Buffer, typed arrays, ArrayBuffer): there are no
// files or streams in a function. Loaded on first use of the global (30_builtins.js).
(function (deps) {
  const { Buffer } = deps;
  const LINE_BREAK = "\r\n";
  const DEFAULT_CONTENT_TYPE = "application/octet-stream";
  // mime-types' answers for the extensions functions upload (a subset of mime-db)
  const MIME = {
    "txt": "text/plain", "csv": "text/csv", "tsv": "text/tab-separated-values", "json": "application/json",
    "xml": "application/xml", "html": "text/html", "htm": "text/html", "js": "application/javascript",
    "mjs": "application/javascript", "css": "text/css", "md": "text/markdown", "yaml": "text/yaml",
    "yml": "text/yaml", "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg",
    "gif": "image/gif", "webp": "image/webp", "svg": "image/svg+xml", "ico": "image/vnd.microsoft.icon",
    "bmp": "image/bmp", "tif": "image/tiff", "tiff": "image/tiff", "heic": "image/heic", "avif": "image/avif",
    "mp3": "audio/mpeg", "wav": "audio/wave", "ogg": "audio/ogg", "m4a": "audio/mp4", "aac": "audio/x-aac",
    "flac": "audio/x-flac", "mp4": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo",
    "webm": "video/webm", "mkv": "video/x-matroska", "mpeg": "video/mpeg", "zip": "application/zip",
    "gz": "application/gzip", "tar": "application/x-tar", "7z": "application/x-7z-compressed",
    "rar": "application/vnd.rar", "bz2": "application/x-bzip2", "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt": "application/vnd.ms-powerpoint",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "rtf": "application/rtf", "eml": "message/rfc822", "ics": "text/calendar", "vcf": "text/x-vcard",
    "bin": "application/octet-stream", "exe": "application/x-msdos-program", "woff": "font/woff",
    "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf", "wasm": "application/wasm",
    "jsonld": "application/ld+json", "geojson": "application/geo+json", "log": "text/plain",
    "sql": "application/x-sql", "pem": "application/x-x509-ca-cert", "crt": "application/x-x509-ca-cert",
    "der": "application/x-x509-ca-cert", "p12": "application/x-pkcs12", "epub": "application/epub+zip",
  };

  function lookup(name) {
    const base = basename(String(name));
    const dot = base.lastIndexOf(".");
    const ext = (dot >= 0 ? base.slice(dot + 1) : base).toLowerCase();
    return MIME[ext] || false;
  }
  function basename(p) {
    p = p.replace(/\/+$/, "");
    return p.slice(p.lastIndexOf("/") + 1);
  }
  function normalize(p) { // Node's path.posix.normalize
    const abs = p.startsWith("/");
    const out = [];
    for (const seg of p.split("/")) {
      if (seg === "" || seg === ".") continue;
      if (seg === "..") { if (out.length && out[out.length - 1] !== "..") out.pop(); else if (!abs) out.push(".."); }
      else out.push(seg);
    }
    let s = (abs ? "/" : "") + out.join("/");
    if (!s) s = abs ? "/" : ".";
    if (p.endsWith("/") && s !== "/") s += "/";
    return s;
  }
  function asBytes(value) {
    if (value instanceof Buffer) return value;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) return Buffer.from(value instanceof ArrayBuffer ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
    return null;
  }

  class FormData {
    constructor(options) {
      this._overheadLength = 0;
      this._valueLength = 0;
      this._streams = []; // header string, value, footer marker — in form-data's order
      options = options || {};
      for (const k in options) this[k] = options[k];
    }
    append(field, value, options) {
      options = options || {};
      if (typeof options === "string") options = { filename: options };
      if (typeof value === "number") value = "" + value;
      if (Array.isArray(value)) throw new Error("Arrays are not supported.");
      if (value === undefined || value === null) throw new TypeError(`Cannot read properties of ${value} (reading 'name')`);
      if (typeof value !== "string") {
        const bytes = asBytes(value);
        if (bytes === null) throw new TypeError(`form-data: the value of "${field}" must be a string, a number or bytes (Buffer, typed array, ArrayBuffer), got ${typeof value}`);
        value = bytes;
      }
      const header = this._multiPartHeader(field, value, options);
      this._streams.push(header, value, FOOTER);
      const known = options.knownLength;
      this._valueLength += known != null ? +known : typeof value === "string" ? Buffer.byteLength(value) : value.length;
      this._overheadLength += Buffer.byteLength(header) + LINE_BREAK.length;
    }
    _multiPartHeader(field, value, options) {
      if (typeof options.header === "string") return options.header;
      let filename;
      if (typeof options.filepath === "string") filename = normalize(options.filepath).replace(/\\/g, "/");
      else if (options.filename) filename = basename(String(options.filename));
      let contentType = options.contentType;
      if (!contentType && (options.filepath || options.filename)) contentType = lookup(options.filepath || options.filename);
      if (!contentType && typeof value === "object") contentType = DEFAULT_CONTENT_TYPE;
      const headers = {
        "Content-Disposition": ["form-data", 'name="' + field + '"'].concat(filename ? 'filename="' + filename + '"' : []),
        "Content-Type": [].concat(contentType || []),
      };
      if (options.header && typeof options.header === "object") {
        for (const k of Object.keys(options.header)) headers[k] = options.header[k];
      }
      let contents = "";
      for (const prop of Object.keys(headers)) {
        let h = headers[prop];
        if (h == null) continue;
        if (!Array.isArray(h)) h = [h];
        if (h.length) contents += prop + ": " + h.join("; ") + LINE_BREAK;
      }
      return "--" + this.getBoundary() + LINE_BREAK + contents + LINE_BREAK;
    }
    _lastBoundary() { return "--" + this.getBoundary() + "--" + LINE_BREAK; }
    getHeaders(userHeaders) {
      const out = { "content-type": "multipart/form-data; boundary=" + this.getBoundary() };
      for (const k in userHeaders) if (Object.prototype.hasOwnProperty.call(userHeaders, k)) out[k.toLowerCase()] = userHeaders[k];
      return out;
    }
    setBoundary(boundary) { this._boundary = boundary; }
    getBoundary() {
      if (!this._boundary) {
        let b = "--------------------------";
        for (let i = 0; i < 24; i++) b += Math.floor(Math.random() * 10).toString(16);
        this._boundary = b;
      }
      return this._boundary;
    }
    /** form-data's getBuffer(), quirks included (a custom string header gets a line break after it). */
    getBuffer() {
      const boundary = this.getBoundary();
      const parts = [];
      for (const s of this._streams) {
        if (s === FOOTER) continue;
        parts.push(typeof s === "string" ? Buffer.from(s) : s);
        if (typeof s !== "string" || s.substring(2, boundary.length + 2) !== boundary) parts.push(Buffer.from(LINE_BREAK));
      }
      parts.push(Buffer.from(this._lastBoundary()));
      return Buffer.concat(parts);
    }
    /** The bytes form-data streams (what node-fetch sends): header, value, line break per part, then the end. */
    _wire() {
      const parts = [];
      for (let i = 0; i < this._streams.length; i++) {
        const s = this._streams[i];
        if (s !== FOOTER) parts.push(typeof s === "string" ? Buffer.from(s) : s);
        else parts.push(Buffer.from(LINE_BREAK + (i === this._streams.length - 1 ? this._lastBoundary() : "")));
      }
      return Buffer.concat(parts);
    }
    getLengthSync() {
      return this._overheadLength + this._valueLength + (this._streams.length ? this._lastBoundary().length : 0);
    }
    hasKnownLength() { return true; }
    getLength(cb) { const n = this.getLengthSync(); Promise.resolve().then(() => cb(null, n)); }
    submit() { throw new Error("form.submit() is not available in a function: send the form with fetch(url, {method: 'POST', body: form})"); }
    toString() { return "[object FormData]"; }
  }
  const FOOTER = Object.freeze({ footer: true });
  FormData.LINE_BREAK = LINE_BREAK;
  FormData.DEFAULT_CONTENT_TYPE = DEFAULT_CONTENT_TYPE;
  return FormData;
})
