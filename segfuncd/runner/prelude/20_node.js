// segfuncd prelude, part 2: Buffer (utf8 / base64 / hex / latin1).
//
// `crypto` lives in lazy/crypto.js (loaded on first use, see 30_builtins.js); bytes cross
// the host bridge as latin1 strings (one char per byte), which JSON carries safely.

function __latin1FromBytes(u8) {
  let s = "";
  for (let i = 0; i < u8.length; i += 8192) s += String.fromCharCode.apply(null, u8.subarray(i, i + 8192));
  return s;
}
function bytesFromLatin1(s) {
  const u8 = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u8[i] = s.charCodeAt(i) & 255;
  return u8;
}
function utf8Encode(str) {
  const out = [];
  for (let i = 0; i < str.length; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
      const d = str.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
      else c = 0xfffd;
    } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}
function utf8Decode(u8) {
  // WHATWG decoding, as V8's: each maximal bad subpart is one U+FFFD (40_node_extras.js)
  return utf8DecodeWhatwg(u8, false, false)[0];
}
function hexEncode(u8) {
  let s = "";
  for (let i = 0; i < u8.length; i++) s += (u8[i] < 16 ? "0" : "") + u8[i].toString(16);
  return s;
}
function hexDecode(s) {
  const n = s.length >> 1;
  const u8 = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const pair = s.substr(i * 2, 2);
    if (!/^[0-9a-fA-F]{2}$/.test(pair)) return u8.subarray(0, i); // Node stops at the first bad pair
    const v = parseInt(pair, 16);
    u8[i] = v;
  }
  return u8;
}
function normEnc(enc) {
  enc = String(enc || "utf8").toLowerCase();
  if (enc === "utf-8") return "utf8";
  if (enc === "binary") return "latin1";
  if (enc === "ucs2" || enc === "ucs-2" || enc === "utf-16le" || enc === "utf16le") return "utf16le";
  return enc;
}

class Buffer extends Uint8Array {
  static from(value, encOrOffset, length) {
    if (typeof value === "string") {
      const enc = normEnc(encOrOffset);
      let u8;
      if (enc === "utf8") u8 = utf8Encode(value);
      else if (enc === "hex") u8 = hexDecode(value);
      else if (enc === "base64" || enc === "base64url") u8 = bytesFromLatin1(__b64decode(value, false));
      else if (enc === "latin1" || enc === "ascii") u8 = bytesFromLatin1(value);
      else if (enc === "utf16le") { u8 = new Uint8Array(value.length * 2); for (let i = 0; i < value.length; i++) { const c = value.charCodeAt(i); u8[2 * i] = c & 255; u8[2 * i + 1] = c >> 8; } }
      else throw new TypeError(`Unknown encoding: ${encOrOffset}`);
      return Buffer._wrap(u8);
    }
    if (value instanceof ArrayBuffer) {
      return new Buffer(value, encOrOffset || 0, length === undefined ? value.byteLength - (encOrOffset || 0) : length);
    }
    if (ArrayBuffer.isView(value)) return Buffer._wrap(new Uint8Array(value.buffer, value.byteOffset, value.byteLength).slice());
    if (Array.isArray(value)) return Buffer._wrap(Uint8Array.from(value, (x) => Number(x) & 255));
    if (value && value.type === "Buffer" && Array.isArray(value.data)) return Buffer.from(value.data);
    throw new TypeError("The first argument must be of type string, Buffer, ArrayBuffer, Array or Array-like Object");
  }
  static _wrap(u8) { return new Buffer(u8.buffer, u8.byteOffset, u8.byteLength); }
  static alloc(n, fill) { const b = new Buffer(Number(n) || 0); if (fill !== undefined) b.fill(typeof fill === "string" ? fill.charCodeAt(0) : fill); return b; }
  static allocUnsafe(n) { return new Buffer(Number(n) || 0); }
  static isBuffer(b) { return b instanceof Buffer; }
  static isEncoding(e) { return ["utf8", "hex", "base64", "base64url", "latin1", "ascii", "utf16le"].includes(normEnc(e)); }
  static byteLength(s, enc) { return typeof s === "string" ? Buffer.from(s, enc).length : s.byteLength; }
  static concat(list, total) {
    if (total === undefined) total = list.reduce((n, b) => n + b.length, 0);
    const out = Buffer.alloc(total);
    let off = 0;
    for (const b of list) { if (off >= total) break; out.set(b.subarray(0, total - off), off); off += b.length; }
    return out;
  }
  toString(enc, start, end) {
    const u8 = this.subarray(start || 0, end === undefined ? this.length : end);
    enc = normEnc(enc);
    if (enc === "utf8") return utf8Decode(u8);
    if (enc === "hex") return hexEncode(u8);
    if (enc === "base64") return __b64encode(__latin1FromBytes(u8));
    if (enc === "base64url") return __b64encode(__latin1FromBytes(u8)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    if (enc === "latin1") return __latin1FromBytes(u8);
    if (enc === "ascii") return __latin1FromBytes(u8.map((c) => c & 127));
    if (enc === "utf16le") { let s = ""; for (let i = 0; i + 1 < u8.length; i += 2) s += String.fromCharCode(u8[i] | (u8[i + 1] << 8)); return s; }
    throw new TypeError(`Unknown encoding: ${enc}`);
  }
  toJSON() { return { type: "Buffer", data: Array.from(this) }; }
  equals(other) { if (this.length !== other.length) return false; for (let i = 0; i < this.length; i++) if (this[i] !== other[i]) return false; return true; }
  write(str, offset, enc) { const b = Buffer.from(str, enc); this.set(b.subarray(0, this.length - (offset || 0)), offset || 0); return Math.min(b.length, this.length - (offset || 0)); }
}
