// Node's `crypto` (lazy built-in, see 30_builtins.js). The work is done by the host
// (runner/builtins/crypto_host.py and crypto_keys.py, on Python's `cryptography`); this file
// gives it Node's shape: classes, argument checks, encodings, callbacks, error names/codes.
// Streaming objects (Hash, Cipheriv, Sign) keep their input and send it whole to the host.
(function (deps) {
  "use strict";
  const { hostx, Buffer, latin1FromBytes } = deps;

  function nodeError(Cls, code, message) {
    const e = new Cls(message);
    if (code) e.code = code;
    return e;
  }
  function describe(v) {
    if (v === null) return "Received null";
    if (v === undefined) return "Received undefined";
    if (typeof v === "function") return `Received function ${v.name}`;
    if (typeof v === "object") return v.constructor && v.constructor.name ? `Received an instance of ${v.constructor.name}` : `Received ${typeof v}`;
    let s = String(v);
    if (s.length > 28) s = s.slice(0, 25) + "...";
    return `Received type ${typeof v} (${typeof v === "string" ? `'${s}'` : s})`;
  }
  function argType(name, what, v) {
    return nodeError(TypeError, "ERR_INVALID_ARG_TYPE", `The "${name}" argument must be ${what}. ${describe(v)}`);
  }
  const BYTES = "of type string or an instance of Buffer, TypedArray, or DataView";
  const ENCODINGS = ["utf8", "utf-8", "hex", "base64", "base64url", "latin1", "binary", "ascii", "ucs2", "ucs-2", "utf16le", "utf-16le"];
  const isEncoding = (e) => typeof e === "string" && ENCODINGS.includes(e.toLowerCase());

  /** The bytes of a string (in `enc`) or of any byte view, as a latin1 bridge string. */
  function bin(data, enc, name = "data", what = BYTES) {
    if (typeof data === "string") return latin1FromBytes(Buffer.from(data, isEncoding(enc) ? enc : "utf8"));
    if (data instanceof ArrayBuffer) return latin1FromBytes(new Uint8Array(data));
    if (ArrayBuffer.isView(data)) return latin1FromBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    throw argType(name, what, data);
  }
  const buf = (latin1) => Buffer.from(latin1, "latin1");
  /** Node's output convention: a Buffer, or a string when given a known encoding. */
  function out(latin1, enc) {
    const b = buf(latin1);
    return isEncoding(enc) ? b.toString(enc) : b;
  }
  const later = (fn) => { Promise.resolve().then(fn); };
  function callbackOf(cb) {
    if (typeof cb !== "function") throw argType("callback", "of type function", cb);
    return cb;
  }

  let hashNames = null;
  const names = () => hashNames || (hashNames = hostx("hashes"));

  // ---- hashes and HMACs -------------------------------------------------------------------
  class Hash {
    constructor(alg, options, key) {
      if (typeof alg !== "string") throw argType("algorithm", "of type string", alg);
      this._alg = alg; this._key = key; this._parts = []; this._done = false;
      this._len = options && options.outputLength !== undefined ? options.outputLength : null;
      if (key === undefined && !names().includes(alg.toLowerCase())) throw new Error("Digest method not supported");
      if (key !== undefined) hostx("hmac", alg, "", ""); // Node checks the digest up front
    }
    update(data, enc) {
      if (this._done) throw nodeError(Error, this._key === undefined ? "ERR_CRYPTO_HASH_FINALIZED" : "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      this._parts.push(bin(data, enc));
      return this;
    }
    digest(enc) {
      if (this._done) {
        if (this._key !== undefined) return out("", enc); // Node: a second Hmac digest is empty
        throw nodeError(Error, "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      }
      this._done = true;
      const all = this._parts.join("");
      this._parts = [all];
      return out(this._key === undefined ? hostx("hash", this._alg, all, this._len) : hostx("hmac", this._alg, this._key, all), enc);
    }
    copy(options) {
      if (this._done) throw nodeError(Error, "ERR_CRYPTO_HASH_FINALIZED", "Digest already called");
      const h = Object.create(Object.getPrototypeOf(this));
      Object.assign(h, this, { _parts: this._parts.slice() });
      if (options && options.outputLength !== undefined) h._len = options.outputLength;
      return h;
    }
  }
  class Hmac extends Hash {}

  function secretBytes(key, enc, name = "key") {
    if (key instanceof KeyObject) {
      if (key.type !== "secret") throw nodeError(TypeError, "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE", `Invalid key object type ${key.type}, expected secret.`);
      return key._spec.d;
    }
    return bin(key, enc, name, "of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey");
  }

  // ---- ciphers ----------------------------------------------------------------------------
  /** Holds back what Node's StringDecoder would: partial base64 groups and UTF-8 sequences. */
  function splitForEncoding(latin1, enc, final) {
    if (final || !isEncoding(enc)) return [latin1, ""];
    const e = enc.toLowerCase();
    let keep = 0;
    if (e === "base64" || e === "base64url") keep = latin1.length % 3;
    else if (e === "utf8" || e === "utf-8") {
      for (let i = 1; i <= Math.min(3, latin1.length); i++) {
        const c = latin1.charCodeAt(latin1.length - i);
        if ((c & 0xc0) === 0x80) continue;
        const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need > i) keep = i;
        break;
      }
    }
    return [latin1.slice(0, latin1.length - keep), latin1.slice(latin1.length - keep)];
  }

  class Cipheriv {
    constructor(decrypt, alg, key, iv, options) {
      if (typeof alg !== "string") throw argType("cipher", "of type string", alg);
      this._dec = decrypt; this._alg = alg;
      this._key = secretBytes(key, undefined, "key");
      this._iv = iv === null ? null : bin(iv, undefined, "iv", "of type string or an instance of Buffer, TypedArray, or DataView");
      this._tlen = options && options.authTagLength !== undefined ? options.authTagLength : null;
      hostx("cipher_check", alg, this._key, this._iv, this._tlen);
      this._in = []; this._given = 0; this._pad = true; this._aad = null; this._tag = null;
      this._done = false; this._carry = ""; this._outEnc = undefined;
      const a = alg.toLowerCase();
      this._mode = /-cbc$/.test(a) || /^aes(128|192|256)$/.test(a) ? "cbc" : /-ecb$/.test(a) ? "ecb" : /-ctr$/.test(a) ? "ctr" : null;
    }
    /** Drop the input whose output is final, carrying the chaining state in the IV, so a long
     * stream of update() calls does not re-send everything (AEAD modes keep it all for the tag). */
    _trim(r) {
      if (!this._mode) return;
      const input = this._in.join("");
      const consumed = this._mode === "ctr" ? input.length - (input.length % 16) : this._given;
      this._in = [input.slice(consumed)];
      if (consumed <= 0) return;
      if (this._mode === "cbc") this._iv = this._dec ? input.slice(consumed - 16, consumed) : r.o.slice(consumed - 16, consumed);
      if (this._mode === "ctr") {
        const ctr = Array.from(this._iv, (c) => c.charCodeAt(0));
        let carry = consumed / 16;
        for (let i = 15; i >= 0 && carry > 0; i--) { const v = ctr[i] + (carry % 256); ctr[i] = v & 255; carry = Math.floor(carry / 256) + (v >> 8); }
        this._iv = String.fromCharCode(...ctr);
      }
      this._given -= consumed;
    }
    _run(final) {
      return hostx("cipher", this._alg, this._key, this._iv, this._in.join(""),
        { dec: this._dec, fin: final, pad: this._pad, aad: this._aad, tag: this._tag, tlen: this._tlen });
    }
    _emit(r, enc, final) {
      const fresh = this._carry + r.o.slice(this._given);
      this._given = r.o.length;
      const [now, rest] = splitForEncoding(fresh, enc, final);
      this._carry = rest;
      return out(now, enc);
    }
    update(data, inEnc, outEnc) {
      if (this._done) throw nodeError(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation update");
      this._in.push(bin(data, inEnc));
      const r = this._run(false);
      const result = this._emit(r, outEnc, false);
      this._trim(r);
      return result;
    }
    final(outEnc) {
      if (this._done) throw nodeError(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation final");
      this._done = true;
      const r = this._run(true);
      if (r.t !== undefined) this._authTag = buf(r.t);
      return this._emit(r, outEnc, true);
    }
    setAutoPadding(on) { this._pad = on !== false; return this; }
    setAAD(data, options) { this._aad = bin(data, undefined, "buffer"); return this; }
    getAuthTag() {
      if (this._dec || !this._authTag) throw nodeError(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation getAuthTag");
      return this._authTag;
    }
    setAuthTag(tag) {
      if (!this._dec || this._done) throw nodeError(Error, "ERR_CRYPTO_INVALID_STATE", "Invalid state for operation setAuthTag");
      this._tag = bin(tag, undefined, "buffer");
      return this;
    }
  }

  // ---- keys -------------------------------------------------------------------------------
  class KeyObject {
    constructor(fields) { Object.defineProperty(this, "_spec", { value: fields, enumerable: false }); }
    get type() { return this._spec.type; }
    get asymmetricKeyType() { return this._spec.asym; }
    get asymmetricKeyDetails() {
      const d = this._spec.details;
      if (!d) return undefined;
      const r = Object.assign({}, d);
      if (r.publicExponent !== undefined && typeof BigInt === "function") r.publicExponent = BigInt(r.publicExponent);
      return r;
    }
    get symmetricKeySize() { return this._spec.type === "secret" ? this._spec.d.length : undefined; }
    export(options) {
      const s = this._spec;
      const spec = s.type === "secret" ? { kind: "secret", d: s.d } : { kind: s.type, f: "der", t: s.t, d: s.d };
      const o = Object.assign({}, options || {});
      if (o.passphrase !== undefined) o.passphrase = bin(o.passphrase, undefined, "passphrase");
      if (s.type !== "secret" && o.format !== "jwk" && !o.type) throw argType("options.type", "of type string", o.type);
      const r = hostx("key_export", spec, o);
      if (r.j) return r.j;
      if (r.s !== undefined) return r.s;
      return buf(r.b);
    }
    equals(other) {
      if (!(other instanceof KeyObject)) throw argType("otherKeyObject", "an instance of KeyObject", other);
      return other._spec.type === this._spec.type && other._spec.d === this._spec.d;
    }
    toJSON() { return {}; }
  }

  /** A key argument (PEM/DER text or bytes, a KeyObject, a JWK, or {key, format, type, passphrase}) as a host spec. */
  function keySpec(input, want) {
    if (input instanceof KeyObject) {
      if (input.type === "secret") throw nodeError(TypeError, "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE", `Invalid key object type secret, expected ${want}.`);
      if (want === "private" && input.type !== "private") throw nodeError(TypeError, "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE", `Invalid key object type ${input.type}, expected private.`);
      return { f: "der", t: input._spec.t, d: input._spec.d };
    }
    if (typeof input === "string" || ArrayBuffer.isView(input) || input instanceof ArrayBuffer) return { f: "pem", d: bin(input, "utf8", "key") };
    if (input === null || typeof input !== "object") {
      throw argType("key", "of type string or an instance of ArrayBuffer, Buffer, TypedArray, DataView, KeyObject, or CryptoKey", input);
    }
    if (input.key instanceof KeyObject) return keySpec(input.key, want);
    const format = input.format === undefined ? "pem" : input.format;
    const spec = { f: format, t: input.type === undefined ? null : input.type, p: null };
    if (format === "jwk") {
      if (input.key === null || typeof input.key !== "object") throw argType("key.key", "of type object", input.key);
      spec.d = JSON.parse(JSON.stringify(input.key));
    } else spec.d = bin(input.key, input.encoding || "utf8", "key.key");
    if (input.passphrase !== undefined && input.passphrase !== null) spec.p = bin(input.passphrase, input.encoding || "utf8", "passphrase");
    return spec;
  }
  function signOptions(key) {
    const o = {};
    if (key && typeof key === "object" && !(key instanceof KeyObject) && !ArrayBuffer.isView(key)) {
      for (const k of ["padding", "saltLength", "dsaEncoding"]) if (key[k] !== undefined) o[k] = key[k];
    }
    if (o.dsaEncoding !== undefined && o.dsaEncoding !== "der" && o.dsaEncoding !== "ieee-p1363") {
      throw nodeError(TypeError, "ERR_INVALID_ARG_VALUE", `The property 'options.dsaEncoding' is invalid. Received '${o.dsaEncoding}'`);
    }
    return o;
  }

  function createPrivateKey(key) { return new KeyObject(hostx("key", keySpec(key, "private"), "private")); }
  function createPublicKey(key) { return new KeyObject(hostx("key", keySpec(key, "public"), "public")); }
  function createSecretKey(key, enc) { return new KeyObject({ type: "secret", d: bin(key, enc, "key") }); }

  // ---- sign / verify ----------------------------------------------------------------------
  class Sign {
    constructor(alg) {
      if (typeof alg !== "string") throw argType("algorithm", "of type string", alg);
      if (!names().includes(alg.toLowerCase()) || alg.toLowerCase().startsWith("shake")) throw nodeError(TypeError, "ERR_CRYPTO_INVALID_DIGEST", "Invalid digest");
      this._alg = alg; this._parts = [];
    }
    update(data, enc) { this._parts.push(bin(data, enc)); return this; }
    sign(key, enc) { return out(hostx("sign", this._alg, this._parts.join(""), keySpec(key, "private"), signOptions(key)), enc); }
  }
  class Verify extends Sign {
    verify(key, signature, enc) {
      return hostx("verify", this._alg, this._parts.join(""), keySpec(key, "public"), bin(signature, enc, "signature"), signOptions(key));
    }
  }
  function digestArg(alg) {
    if (alg === null || alg === undefined) return null;
    if (typeof alg !== "string") throw argType("algorithm", "of type string", alg);
    return alg;
  }
  function sign(alg, data, key, cb) {
    const run = () => buf(hostx("sign", digestArg(alg), bin(data, undefined, "data", "an instance of Buffer, TypedArray, or DataView"), keySpec(key, "private"), signOptions(key)));
    if (cb === undefined) return run();
    callbackOf(cb);
    let r, err = null;
    try { r = run(); } catch (e) { err = e; }
    later(() => (err ? cb(err) : cb(null, r)));
  }
  function verify(alg, data, key, signature, cb) {
    const run = () => hostx("verify", digestArg(alg), bin(data, undefined, "data", "an instance of Buffer, TypedArray, or DataView"), keySpec(key, "public"), bin(signature, undefined, "signature", "an instance of ArrayBuffer, Buffer, TypedArray, or DataView"), signOptions(key));
    if (cb === undefined) return run();
    callbackOf(cb);
    let r, err = null;
    try { r = run(); } catch (e) { err = e; }
    later(() => (err ? cb(err) : cb(null, r)));
  }

  // ---- key pairs and RSA encryption ------------------------------------------------------
  function exportFor(key, encoding) {
    if (!encoding) return key;
    const o = Object.assign({}, encoding);
    return key.export(o);
  }
  function generateKeyPairSync(type, options) {
    if (typeof type !== "string") throw argType("type", "of type string", type);
    const o = options || {};
    const priv = new KeyObject(hostx("generate_key", type, { modulusLength: o.modulusLength, publicExponent: o.publicExponent, namedCurve: o.namedCurve }));
    const pub = createPublicKey(priv);
    return { publicKey: exportFor(pub, o.publicKeyEncoding), privateKey: exportFor(priv, o.privateKeyEncoding) };
  }
  function generateKeyPair(type, options, cb) {
    if (typeof options === "function") { cb = options; options = undefined; }
    callbackOf(cb);
    let r, err = null;
    try { r = generateKeyPairSync(type, options); } catch (e) { err = e; }
    later(() => (err ? cb(err) : cb(null, r.publicKey, r.privateKey)));
  }
  function rsaOptions(key) {
    const o = {};
    if (key && typeof key === "object" && !(key instanceof KeyObject) && !ArrayBuffer.isView(key)) {
      if (key.padding !== undefined) o.padding = key.padding;
      if (key.oaepHash !== undefined) o.oaepHash = key.oaepHash;
      if (key.oaepLabel !== undefined) o.oaepLabel = bin(key.oaepLabel, undefined, "oaepLabel");
    }
    return o;
  }
  function publicEncrypt(key, buffer) {
    return buf(hostx("public_encrypt", keySpec(key, "public"), bin(buffer, "utf8", "buffer"), rsaOptions(key)));
  }
  function privateDecrypt(key, buffer) {
    return buf(hostx("private_decrypt", keySpec(key, "private"), bin(buffer, "utf8", "buffer"), rsaOptions(key)));
  }

  // ---- KDFs and randomness ----------------------------------------------------------------
  function num(v, name) {
    if (typeof v !== "number") throw argType(name, "of type number", v);
    return v;
  }
  function pbkdf2Sync(password, salt, iterations, keylen, digest) {
    const pw = bin(password, undefined, "password", "of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView");
    const sa = bin(salt, undefined, "salt", "of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView");
    num(iterations, "iterations"); num(keylen, "keylen");
    if (typeof digest !== "string") throw argType("digest", "of type string", digest);
    return buf(hostx("pbkdf2", pw, sa, iterations, keylen, digest));
  }
  function pbkdf2(password, salt, iterations, keylen, digest, cb) {
    callbackOf(cb);
    const r = pbkdf2Sync(password, salt, iterations, keylen, digest);
    later(() => cb(null, r));
  }
  function scryptSync(password, salt, keylen, options) {
    const pw = bin(password, undefined, "password", "of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView");
    const sa = bin(salt, undefined, "salt", "of type string or an instance of ArrayBuffer, Buffer, TypedArray, or DataView");
    num(keylen, "keylen");
    return buf(hostx("scrypt", pw, sa, keylen, options || {}));
  }
  function scrypt(password, salt, keylen, options, cb) {
    if (typeof options === "function") { cb = options; options = {}; }
    callbackOf(cb);
    let r, err = null;
    try { r = scryptSync(password, salt, keylen, options); } catch (e) { if (e.code === "ERR_INVALID_ARG_TYPE") throw e; err = e; }
    later(() => (err ? cb(err) : cb(null, r)));
  }
  function hkdfSync(digest, ikm, salt, info, keylen) {
    if (typeof digest !== "string") throw argType("digest", "of type string", digest);
    const key = secretBytes(ikm, undefined, "ikm");
    num(keylen, "keylen");
    const b = buf(hostx("hkdf", digest, key, bin(salt, undefined, "salt"), bin(info, undefined, "info"), keylen));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  }
  function hkdf(digest, ikm, salt, info, keylen, cb) {
    callbackOf(cb);
    const r = hkdfSync(digest, ikm, salt, info, keylen);
    later(() => cb(null, r));
  }

  function randomLatin1(n) {
    let s = "";
    for (let left = n; left > 0; left -= 1048576) s += hostx("random", Math.min(left, 1048576));
    return s;
  }
  function randomBytes(size, cb) {
    if (typeof size !== "number") throw argType("size", "of type number", size);
    if (!(size >= 0 && size <= 2147483647) || !Number.isInteger(size)) {
      throw nodeError(RangeError, "ERR_OUT_OF_RANGE", `The value of "size" is out of range. It must be >= 0 && <= 2147483647. Received ${size}`);
    }
    if (size > 64 * 1048576) throw nodeError(RangeError, "ERR_OUT_OF_RANGE", `The value of "size" is out of range. It must be <= ${64 * 1048576} in segfuncd. Received ${size}`);
    const b = buf(randomLatin1(size));
    if (cb === undefined) return b;
    callbackOf(cb);
    later(() => cb(null, b));
  }
  function randomFillSync(view, offset = 0, size) {
    if (!ArrayBuffer.isView(view) && !(view instanceof ArrayBuffer)) throw argType("buf", "an instance of ArrayBuffer or ArrayBufferView", view);
    const u8 = view instanceof ArrayBuffer ? new Uint8Array(view) : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const n = size === undefined ? u8.length - offset : size;
    if (offset < 0 || n < 0 || offset + n > u8.length) throw nodeError(RangeError, "ERR_OUT_OF_RANGE", 'The value of "offset" is out of range.');
    u8.set(randomBytes(n), offset);
    return view;
  }
  function randomFill(view, offset, size, cb) {
    if (typeof offset === "function") { cb = offset; offset = 0; size = undefined; } else if (typeof size === "function") { cb = size; size = undefined; }
    callbackOf(cb);
    const r = randomFillSync(view, offset, size);
    later(() => cb(null, r));
  }
  function randomInt(min, max, cb) {
    if (max === undefined || typeof max === "function") { cb = max; max = min; min = 0; }
    if (!Number.isSafeInteger(min)) throw argType("min", "a safe integer", min);
    if (!Number.isSafeInteger(max)) throw argType("max", "a safe integer", max);
    if (max <= min) throw nodeError(RangeError, "ERR_OUT_OF_RANGE", `The value of "max" is out of range. It must be greater than the value of "min" (${min}). Received ${max}`);
    const range = max - min;
    if (range > 2 ** 48) throw nodeError(RangeError, "ERR_OUT_OF_RANGE", `The value of "max - min" is out of range. It must be <= 281474976710655. Received ${range}`);
    const limit = 2 ** 48 - (2 ** 48 % range);
    let x;
    do { const b = randomBytes(6); x = b.readUIntBE ? b.readUIntBE(0, 6) : b.reduce((a, c) => a * 256 + c, 0); } while (x >= limit);
    const r = min + (x % range);
    if (cb === undefined) return r;
    callbackOf(cb);
    later(() => cb(null, r));
  }
  function randomUUID() {
    const b = randomBytes(16);
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  const INTEGER_ARRAYS = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "BigInt64Array", "BigUint64Array"];
  function domException(name, code, message) {
    const e = new Error(message);
    Object.defineProperty(e, "name", { value: name, writable: true, configurable: true });
    e.code = code;
    return e;
  }
  function getRandomValues(view) {
    if (!ArrayBuffer.isView(view) || view instanceof DataView || !INTEGER_ARRAYS.includes(view.constructor && view.constructor.name)) {
      throw domException("TypeMismatchError", 17, "The data argument must be an integer-type TypedArray");
    }
    if (view.byteLength > 65536) throw domException("QuotaExceededError", 22, "The requested length exceeds 65,536 bytes");
    new Uint8Array(view.buffer, view.byteOffset, view.byteLength).set(randomBytes(view.byteLength));
    return view;
  }
  function timingSafeEqual(a, b) {
    const what = "an instance of ArrayBuffer, Buffer, TypedArray, or DataView";
    if (!ArrayBuffer.isView(a) && !(a instanceof ArrayBuffer)) throw argType("buf1", what, a);
    if (!ArrayBuffer.isView(b) && !(b instanceof ArrayBuffer)) throw argType("buf2", what, b);
    const x = bin(a), y = bin(b);
    if (x.length !== y.length) throw nodeError(RangeError, "ERR_CRYPTO_TIMING_SAFE_EQUAL_LENGTH", "Input buffers must have the same byte length");
    let d = 0;
    for (let i = 0; i < x.length; i++) d |= x.charCodeAt(i) ^ y.charCodeAt(i);
    return d === 0;
  }

  const CIPHERS = ["aes-128-cbc", "aes-128-ctr", "aes-128-ecb", "aes-128-gcm", "aes-192-cbc", "aes-192-ctr", "aes-192-ecb", "aes-192-gcm",
    "aes-256-cbc", "aes-256-ctr", "aes-256-ecb", "aes-256-gcm", "aes128", "aes192", "aes256", "chacha20-poly1305",
    "id-aes128-gcm", "id-aes192-gcm", "id-aes256-gcm"];
  const constants = Object.freeze({
    RSA_PKCS1_PADDING: 1, RSA_NO_PADDING: 3, RSA_PKCS1_OAEP_PADDING: 4, RSA_PKCS1_PSS_PADDING: 6,
    RSA_PSS_SALTLEN_DIGEST: -1, RSA_PSS_SALTLEN_MAX_SIGN: -2, RSA_PSS_SALTLEN_AUTO: -2,
  });

  function hashFactory(Cls) { return (alg, options) => new Cls(alg, options, undefined); }
  return Object.freeze({
    createHash: hashFactory(Hash),
    createHmac(alg, key, options) { return new Hmac(alg, options, secretBytes(key, options && options.encoding)); },
    createCipheriv(alg, key, iv, options) { return new Cipheriv(false, alg, key, iv, options); },
    createDecipheriv(alg, key, iv, options) { return new Cipheriv(true, alg, key, iv, options); },
    createSign(alg) { return new Sign(alg); },
    createVerify(alg) { return new Verify(alg); },
    sign, verify, createPrivateKey, createPublicKey, createSecretKey, KeyObject,
    generateKeyPair, generateKeyPairSync, publicEncrypt, privateDecrypt,
    pbkdf2, pbkdf2Sync, scrypt, scryptSync, hkdf, hkdfSync,
    randomBytes, randomFill, randomFillSync, randomInt, randomUUID, getRandomValues, timingSafeEqual,
    getHashes() { return names().slice(); },
    getCiphers() { return CIPHERS.slice(); },
    constants,
    Hash, Hmac, Sign, Verify, Cipheriv, Decipheriv: Cipheriv,
  });
});
