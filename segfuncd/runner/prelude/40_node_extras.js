// segfuncd prelude: setInterval, TextEncoder / TextDecoder, and `window` (published at the end).
//
// An interval is a setTimeout that fireTimer (00_core.js) re-arms after each call: it counts
// once against the per-invocation timer cap, clearTimeout and clearInterval both stop it, and
// it dies with its invocation like any timer. Node clamps a delay under 1 ms to 1 ms.

function setInterval(fn, ms, ...args) {
  if (typeof fn !== "function") throw new TypeError("setInterval: callback must be a function");
  let every = Number(ms);
  if (!(every >= 1 && every <= 2147483647)) every = 1;
  const id = setTimeout(fn, every, ...args);
  const tm = timers[id];
  if (tm !== undefined) tm.every = every;
  return id;
}
function clearInterval(id) {
  clearTimeout(id);
}

// ---- TextEncoder / TextDecoder (WHATWG Encoding: utf-8, utf-16le/be, windows-1252) ----------
function encodingError(message, code, Cls) {
  const err = new (Cls || TypeError)(message);
  err.code = code;
  return err;
}
const UTF8_LABELS = ["unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8"];
const UTF16LE_LABELS = ["csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff", "utf-16", "utf-16le"];
const UTF16BE_LABELS = ["unicodefffe", "utf-16be"];
const WINDOWS_1252_LABELS = ["ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1",
  "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1", "us-ascii",
  "windows-1252", "x-cp1252"];
// Node 20 decodes "windows-1252" as plain latin1 (bytes 0x80..0x9F stay C1 controls), and so do we

class TextEncoder {
  get encoding() { return "utf-8"; }
  encode(input = "") {
    return utf8Encode(`${input}`);
  }
  encodeInto(src, dest) {
    if (!(dest instanceof Uint8Array)) {
      throw encodingError('The "dest" argument must be an instance of Uint8Array.', "ERR_INVALID_ARG_TYPE");
    }
    src = `${src}`;
    let read = 0, written = 0;
    for (let i = 0; i < src.length;) {
      const cp = src.codePointAt(i);
      const units = cp > 0xffff ? 2 : 1;
      const bytes = utf8Encode(src.slice(i, i + units));
      if (written + bytes.length > dest.length) break;
      dest.set(bytes, written);
      written += bytes.length;
      read += units;
      i += units;
    }
    return { read, written };
  }
}

/** WHATWG UTF-8 decode of u8 from `start`: [text, index of an unfinished sequence at the end]. */
function utf8DecodeWhatwg(u8, fatal, stream) {
  let s = "";
  let i = 0;
  const n = u8.length;
  const bad = () => {
    if (fatal) throw encodingError("The encoded data was not valid for encoding utf-8", "ERR_ENCODING_INVALID_ENCODED_DATA");
    s += "\ufffd";
  };
  while (i < n) {
    const b = u8[i];
    if (b < 0x80) { s += String.fromCharCode(b); i++; continue; }
    let need, cp, lower = 0x80, upper = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; cp = b & 0xf; if (b === 0xe0) lower = 0xa0; if (b === 0xed) upper = 0x9f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; cp = b & 0x7; if (b === 0xf0) lower = 0x90; if (b === 0xf4) upper = 0x8f; }
    else { bad(); i++; continue; }
    let j = i + 1;
    let ok = true;
    for (let k = 0; k < need; k++, j++) {
      if (j >= n) { ok = false; break; }
      const x = u8[j];
      if (x < lower || x > upper) { ok = false; break; }
      lower = 0x80; upper = 0xbf;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (!ok) {
      if (j >= n && stream) return [s, i]; // the rest may come with the next chunk
      bad();
      i = j; // the maximal subpart is one U+FFFD; the offending byte is looked at again
      continue;
    }
    s += String.fromCodePoint(cp);
    i = j;
  }
  return [s, n];
}

class TextDecoder {
  constructor(encoding = "utf-8", options = {}) {
    const label = `${encoding}`.trim().toLowerCase();
    if (UTF8_LABELS.includes(label)) this._enc = "utf-8";
    else if (UTF16LE_LABELS.includes(label)) this._enc = "utf-16le";
    else if (UTF16BE_LABELS.includes(label)) this._enc = "utf-16be";
    else if (WINDOWS_1252_LABELS.includes(label)) this._enc = "windows-1252";
    else throw encodingError(`The "${encoding}" encoding is not supported`, "ERR_ENCODING_NOT_SUPPORTED", RangeError);
    if (options === null || (typeof options !== "object" && typeof options !== "function")) {
      if (options !== undefined) throw encodingError(`The "options" argument must be of type object. Received ${typeof options === "string" ? `type string ('${options}')` : `type ${typeof options} (${String(options)})`}`, "ERR_INVALID_ARG_TYPE");
      options = {};
    }
    this._fatal = Boolean(options.fatal);
    this._ignoreBOM = Boolean(options.ignoreBOM);
    this._pending = new Uint8Array(0);
    this._bomSeen = false;
  }
  get encoding() { return this._enc; }
  get fatal() { return this._fatal; }
  get ignoreBOM() { return this._ignoreBOM; }
  decode(input = undefined, options = {}) {
    let u8;
    if (input === undefined) u8 = new Uint8Array(0);
    else if (input instanceof ArrayBuffer) u8 = new Uint8Array(input);
    else if (ArrayBuffer.isView(input)) u8 = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
    else {
      // Node 20's words, "list" and all
      throw encodingError('The "list" argument must be an instance of SharedArrayBuffer, ArrayBuffer or ArrayBufferView.', "ERR_INVALID_ARG_TYPE");
    }
    const stream = Boolean(options && options.stream);
    if (this._pending.length) {
      const joined = new Uint8Array(this._pending.length + u8.length);
      joined.set(this._pending);
      joined.set(u8, this._pending.length);
      u8 = joined;
    }
    let text, used;
    if (this._enc === "utf-8") {
      [text, used] = utf8DecodeWhatwg(u8, this._fatal, stream);
    } else if (this._enc === "windows-1252") {
      text = "";
      text = __latin1FromBytes(u8);
      used = u8.length;
    } else if (this._enc === "utf-16be") {
      const swapped = new Uint8Array(u8.length);
      for (let i = 0; i + 1 < u8.length; i += 2) { swapped[i] = u8[i + 1]; swapped[i + 1] = u8[i]; }
      if (u8.length & 1) swapped[u8.length - 1] = u8[u8.length - 1];
      [text, used] = utf16leDecode(swapped, this._fatal, stream, "utf-16be");
    } else {
      [text, used] = utf16leDecode(u8, this._fatal, stream, "utf-16le");
    }
    this._pending = u8.slice(used);
    if (!this._ignoreBOM && !this._bomSeen && text.length && this._enc !== "windows-1252") {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this._bomSeen = true;
    }
    if (!stream) { this._pending = new Uint8Array(0); this._bomSeen = false; }
    return text;
  }
}
Object.defineProperty(TextEncoder.prototype, Symbol.toStringTag, { value: "TextEncoder", configurable: true });
Object.defineProperty(TextDecoder.prototype, Symbol.toStringTag, { value: "TextDecoder", configurable: true });

function utf16leDecode(u8, fatal, stream, name) {
  let s = "";
  const even = u8.length - (u8.length & 1);
  for (let i = 0; i < even; i += 2) s += String.fromCharCode(u8[i] | (u8[i + 1] << 8));
  let used = even;
  if (even < u8.length) {
    if (stream) used = even;
    else if (fatal) throw encodingError(`The encoded data was not valid for encoding ${name}`, "ERR_ENCODING_INVALID_ENCODED_DATA");
    else { s += "\ufffd"; used = u8.length; }
  }
  // lone surrogates become U+FFFD (a high one at the very end may wait for the next chunk)
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      if (i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { out += s[i] + s[i + 1]; i++; continue; }
      } else if (stream) { used -= 2; break; }
    } else if (!(c >= 0xdc00 && c <= 0xdfff)) { out += s[i]; continue; }
    if (fatal) throw encodingError(`The encoded data was not valid for encoding ${name}`, "ERR_ENCODING_INVALID_ENCODED_DATA");
    out += "\ufffd";
  }
  return [out, used];
}

for (const [name, value] of Object.entries({ setInterval, clearInterval, TextEncoder, TextDecoder })) {
  Object.defineProperty(globalThis, name, { value: value, writable: true, configurable: true, enumerable: false });
}
// Segment's runtime is not a browser, but functions written for it test `window`: a self-reference
Object.defineProperty(globalThis, "window", { value: globalThis, writable: true, configurable: true, enumerable: false });
