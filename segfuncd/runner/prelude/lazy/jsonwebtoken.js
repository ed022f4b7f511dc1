// `jsonwebtoken` 9 (lazy built-in, see 30_builtins.js): sign, verify, decode and its errors,
// following the npm package's rules and messages; the JWS signature itself is made and checked
// by PyJWT on the host (runner/builtins/jwt_host.py). Keys go through our `crypto` KeyObjects,
// as jsonwebtoken does with Node's.
(function (deps) {
  "use strict";
  const { hostx, Buffer, loadBuiltin } = deps;
  const crypto = loadBuiltin("crypto");
  const { KeyObject, createPrivateKey, createPublicKey, createSecretKey } = crypto;

  class JsonWebTokenError extends Error {
    constructor(message, error) {
      super(message);
      Object.defineProperty(this, "name", { value: "JsonWebTokenError", writable: true, configurable: true, enumerable: true });
      if (error) this.inner = error;
    }
  }
  class NotBeforeError extends JsonWebTokenError {
    constructor(message, date) { super(message); this.name = "NotBeforeError"; this.date = date; }
  }
  class TokenExpiredError extends JsonWebTokenError {
    constructor(message, expiredAt) { super(message); this.name = "TokenExpiredError"; this.expiredAt = expiredAt; }
  }

  // ---- the `ms` package, as jsonwebtoken's timespan uses it
  const MS_UNITS = { y: 31557600000, w: 604800000, d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1 };
  function ms(str) {
    str = String(str);
    if (str.length > 100) return undefined;
    const m = /^(-?(?:\d+)?\.?\d+) *(milliseconds?|msecs?|ms|seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)?$/i.exec(str);
    if (!m) return undefined;
    const n = parseFloat(m[1]);
    const t = (m[2] || "ms").toLowerCase();
    const unit = /^(milliseconds?|msecs?|ms)$/.test(t) ? "ms" : /^(seconds?|secs?|s)$/.test(t) ? "s" : /^(minutes?|mins?|m)$/.test(t) ? "m"
      : /^(hours?|hrs?|h)$/.test(t) ? "h" : /^(days?|d)$/.test(t) ? "d" : /^(weeks?|w)$/.test(t) ? "w" : "y";
    return n * MS_UNITS[unit];
  }
  function timespan(time, iat) {
    const timestamp = iat || Math.floor(Date.now() / 1000);
    if (typeof time === "string") {
      if (time.length === 0) throw new Error("val is not a non-empty string or a valid number. val=\"\"");
      const v = ms(time);
      return v === undefined ? undefined : Math.floor(timestamp + v / 1000);
    }
    if (typeof time === "number") return timestamp + time;
    return undefined;
  }

  // ---- option schemas (sign.js)
  const SUPPORTED_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "none"];
  const isPlainObject = (v) => v !== null && typeof v === "object" && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
  const isString = (v) => typeof v === "string";
  const SIGN_OPTIONS = {
    expiresIn: [(v) => Number.isInteger(v) || (isString(v) && v), '"expiresIn" should be a number of seconds or string representing a timespan'],
    notBefore: [(v) => Number.isInteger(v) || (isString(v) && v), '"notBefore" should be a number of seconds or string representing a timespan'],
    audience: [(v) => isString(v) || Array.isArray(v), '"audience" must be a string or array'],
    algorithm: [(v) => SUPPORTED_ALGS.includes(v), '"algorithm" must be a valid string enum value'],
    header: [isPlainObject, '"header" must be an object'],
    encoding: [isString, '"encoding" must be a string'],
    issuer: [isString, '"issuer" must be a string'],
    subject: [isString, '"subject" must be a string'],
    jwtid: [isString, '"jwtid" must be a string'],
    noTimestamp: [(v) => typeof v === "boolean", '"noTimestamp" must be a boolean'],
    keyid: [isString, '"keyid" must be a string'],
    mutatePayload: [(v) => typeof v === "boolean", '"mutatePayload" must be a boolean'],
    allowInsecureKeySizes: [(v) => typeof v === "boolean", '"allowInsecureKeySizes" must be a boolean'],
    allowInvalidAsymmetricKeyTypes: [(v) => typeof v === "boolean", '"allowInvalidAsymmetricKeyTypes" must be a boolean'],
  };
  const CLAIMS = {
    iat: [(v) => typeof v === "number", '"iat" should be a number of seconds'],
    exp: [(v) => typeof v === "number", '"exp" should be a number of seconds'],
    nbf: [(v) => typeof v === "number", '"nbf" should be a number of seconds'],
  };
  function validate(schema, allowUnknown, object, name) {
    if (!isPlainObject(object)) throw new Error(`Expected "${name}" to be a plain object.`);
    for (const key of Object.keys(object)) {
      const rule = schema[key];
      if (!rule) { if (!allowUnknown) throw new Error(`"${key}" is not allowed in "${name}"`); continue; }
      if (!rule[0](object[key])) throw new Error(rule[1]);
    }
  }
  const OPTIONS_TO_PAYLOAD = { audience: "aud", issuer: "iss", subject: "sub", jwtid: "jti" };
  const OPTIONS_FOR_OBJECTS = ["expiresIn", "notBefore", "noTimestamp", "audience", "issuer", "subject", "jwtid"];

  const ALGS_FOR_KEYS = { ec: ["ES256", "ES384", "ES512"], rsa: ["RS256", "PS256", "RS384", "PS384", "RS512", "PS512"], "rsa-pss": ["PS256", "PS384", "PS512"] };
  const CURVES = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };
  function validateAsymmetricKey(alg, key) {
    if (!alg || !key) return;
    const type = key.asymmetricKeyType;
    if (!type) return;
    const allowed = ALGS_FOR_KEYS[type];
    if (!allowed) throw new Error(`Unknown key type "${type}".`);
    if (!allowed.includes(alg)) throw new Error(`"alg" parameter for "${type}" key type must be one of: ${allowed.join(", ")}.`);
    if (type === "ec" && key.asymmetricKeyDetails.namedCurve !== CURVES[alg]) throw new Error(`"alg" parameter "${alg}" requires curve "${CURVES[alg]}".`);
  }

  // ---- JWS (the jws and jwa packages)
  const b64url = (buf) => buf.toString("base64").replace(/=/g, "").replace(/\+/g, "-").replace(/\//g, "_");
  const jsonish = (v) => (typeof v === "string" ? v : typeof v === "number" || Buffer.isBuffer(v) ? v.toString() : JSON.stringify(v));
  function hostKey(alg, key) {
    if (alg.startsWith("HS")) return { secret: key.export().toString("latin1") };
    return { spec: { f: "der", t: key.type === "private" ? "pkcs8" : "spki", d: key.export({ format: "der", type: key.type === "private" ? "pkcs8" : "spki" }).toString("latin1") } };
  }
  function jwsSign(header, payload, key, encoding) {
    const input = `${b64url(Buffer.from(jsonish(header), "binary"))}.${b64url(Buffer.from(jsonish(payload), encoding))}`;
    return `${input}.${hostx("jwt_sign", header.alg, input, header.alg === "none" ? null : hostKey(header.alg, key))}`;
  }
  const JWS_REGEX = /^[a-zA-Z0-9\-_]+?\.[a-zA-Z0-9\-_]+?\.([a-zA-Z0-9\-_]+)?$/;
  function safeJsonParse(s) { try { return JSON.parse(s); } catch (e) { return undefined; } }
  function jwsDecode(token, opts) {
    token = jsonish(token);
    if (!JWS_REGEX.test(token)) return null;
    const header = safeJsonParse(Buffer.from(token.split(".", 1)[0], "base64").toString("binary"));
    if (!header) return null;
    let payload = Buffer.from(token.split(".")[1], "base64").toString("utf8");
    if (header.typ === "JWT" || opts.json) payload = JSON.parse(payload);
    return { header, payload, signature: token.split(".")[2] };
  }

  function decode(token, options) {
    options = options || {};
    const decoded = jwsDecode(token, options);
    if (!decoded) return null;
    let payload = decoded.payload;
    if (typeof payload === "string") {
      try { const o = JSON.parse(payload); if (o !== null && typeof o === "object") payload = o; } catch (e) { /* not JSON: keep the text */ }
    }
    if (options.complete === true) return { header: decoded.header, payload, signature: decoded.signature };
    return payload;
  }

  function sign(payload, secretOrPrivateKey, options, callback) {
    if (typeof options === "function") { callback = options; options = {}; } else options = options || {};
    const isObjectPayload = typeof payload === "object" && !Buffer.isBuffer(payload);
    const header = Object.assign({ alg: options.algorithm || "HS256", typ: isObjectPayload ? "JWT" : undefined, kid: options.keyid }, options.header);
    const failure = (err) => { if (callback) return callback(err); throw err; };
    if (!secretOrPrivateKey && options.algorithm !== "none") return failure(new Error("secretOrPrivateKey must have a value"));
    if (secretOrPrivateKey != null && !(secretOrPrivateKey instanceof KeyObject)) {
      try { secretOrPrivateKey = createPrivateKey(secretOrPrivateKey); } catch (_) {
        try { secretOrPrivateKey = createSecretKey(typeof secretOrPrivateKey === "string" ? Buffer.from(secretOrPrivateKey) : secretOrPrivateKey); } catch (_e) {
          return failure(new Error("secretOrPrivateKey is not valid key material"));
        }
      }
    }
    if (typeof header.alg === "string" && header.alg.startsWith("HS") && secretOrPrivateKey.type !== "secret") {
      return failure(new Error(`secretOrPrivateKey must be a symmetric key when using ${header.alg}`));
    } else if (/^(?:RS|PS|ES)/.test(header.alg)) {
      if (secretOrPrivateKey.type !== "private") return failure(new Error(`secretOrPrivateKey must be an asymmetric key when using ${header.alg}`));
      if (!options.allowInsecureKeySizes && !header.alg.startsWith("ES") && secretOrPrivateKey.asymmetricKeyDetails !== undefined &&
          secretOrPrivateKey.asymmetricKeyDetails.modulusLength < 2048) {
        return failure(new Error(`secretOrPrivateKey has a minimum key size of 2048 bits for ${header.alg}`));
      }
    }
    if (typeof payload === "undefined") return failure(new Error("payload is required"));
    if (isObjectPayload) {
      try { validate(CLAIMS, true, payload, "payload"); } catch (error) { return failure(error); }
      if (!options.mutatePayload) payload = Object.assign({}, payload);
    } else {
      const invalid = OPTIONS_FOR_OBJECTS.filter((opt) => typeof options[opt] !== "undefined");
      if (invalid.length > 0) return failure(new Error(`invalid ${invalid.join(",")} option for ${typeof payload} payload`));
    }
    if (typeof payload.exp !== "undefined" && typeof options.expiresIn !== "undefined") return failure(new Error('Bad "options.expiresIn" option the payload already has an "exp" property.'));
    if (typeof payload.nbf !== "undefined" && typeof options.notBefore !== "undefined") return failure(new Error('Bad "options.notBefore" option the payload already has an "nbf" property.'));
    try { validate(SIGN_OPTIONS, false, options, "options"); } catch (error) { return failure(error); }
    if (!options.allowInvalidAsymmetricKeyTypes) {
      try { validateAsymmetricKey(header.alg, secretOrPrivateKey); } catch (error) { return failure(error); }
    }
    const timestamp = payload.iat || Math.floor(Date.now() / 1000);
    if (options.noTimestamp) delete payload.iat;
    else if (isObjectPayload) payload.iat = timestamp;
    if (typeof options.notBefore !== "undefined") {
      try { payload.nbf = timespan(options.notBefore, timestamp); } catch (err) { return failure(err); }
      if (typeof payload.nbf === "undefined") return failure(new Error('"notBefore" should be a number of seconds or string representing a timespan eg: "1d", "20h", 60'));
    }
    if (typeof options.expiresIn !== "undefined" && typeof payload === "object") {
      try { payload.exp = timespan(options.expiresIn, timestamp); } catch (err) { return failure(err); }
      if (typeof payload.exp === "undefined") return failure(new Error('"expiresIn" should be a number of seconds or string representing a timespan eg: "1d", "20h", 60'));
    }
    for (const key of Object.keys(OPTIONS_TO_PAYLOAD)) {
      const claim = OPTIONS_TO_PAYLOAD[key];
      if (typeof options[key] !== "undefined") {
        if (typeof payload[claim] !== "undefined") return failure(new Error(`Bad "options.${key}" option. The payload already has an "${claim}" property.`));
        payload[claim] = options[key];
      }
    }
    const encoding = options.encoding || "utf8";
    let token, error = null;
    try { token = jwsSign(header, payload, secretOrPrivateKey, encoding); } catch (e) { error = e; }
    if (!error && !options.allowInsecureKeySizes && /^(?:RS|PS)/.test(header.alg) && token.split(".")[2].length < 256) {
      error = new Error(`secretOrPrivateKey has a minimum key size of 2048 bits for ${header.alg}`);
    }
    if (typeof callback === "function") {
      Promise.resolve().then(() => (error ? callback(error) : callback(null, token)));
      return undefined;
    }
    if (error) throw error;
    return token;
  }

  const PUB_KEY_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
  const EC_KEY_ALGS = ["ES256", "ES384", "ES512"];
  const RSA_KEY_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
  const HS_ALGS = ["HS256", "HS384", "HS512"];

  function verify(jwtString, secretOrPublicKey, options, callback) {
    if (typeof options === "function" && !callback) { callback = options; options = {}; }
    options = Object.assign({}, options || {});
    const done = callback || ((err, value) => { if (err) throw err; return value; });
    if (options.clockTimestamp && typeof options.clockTimestamp !== "number") return done(new JsonWebTokenError("clockTimestamp must be a number"));
    if (options.nonce !== undefined && (typeof options.nonce !== "string" || options.nonce.trim() === "")) return done(new JsonWebTokenError("nonce must be a non-empty string"));
    if (options.allowInvalidAsymmetricKeyTypes !== undefined && typeof options.allowInvalidAsymmetricKeyTypes !== "boolean") return done(new JsonWebTokenError("allowInvalidAsymmetricKeyTypes must be a boolean"));
    const clockTimestamp = options.clockTimestamp || Math.floor(Date.now() / 1000);
    if (!jwtString) return done(new JsonWebTokenError("jwt must be provided"));
    if (typeof jwtString !== "string") return done(new JsonWebTokenError("jwt must be a string"));
    const parts = jwtString.split(".");
    if (parts.length !== 3) return done(new JsonWebTokenError("jwt malformed"));
    let decoded;
    try { decoded = decode(jwtString, { complete: true }); } catch (err) { return done(err); }
    if (!decoded) return done(new JsonWebTokenError("invalid token"));
    const header = decoded.header;
    let getSecret;
    if (typeof secretOrPublicKey === "function") {
      if (!callback) return done(new JsonWebTokenError("verify must be called asynchronous if secret or public key is provided as a callback"));
      getSecret = secretOrPublicKey;
    } else getSecret = (hdr, cb) => cb(null, secretOrPublicKey);

    return getSecret(header, (err, key) => {
      if (err) return done(new JsonWebTokenError("error in secret or public key callback: " + err.message));
      const hasSignature = parts[2].trim() !== "";
      if (!hasSignature && key) return done(new JsonWebTokenError("jwt signature is required"));
      if (hasSignature && !key) return done(new JsonWebTokenError("secret or public key must be provided"));
      if (!hasSignature && !options.algorithms) return done(new JsonWebTokenError('please specify "none" in "algorithms" to verify unsigned tokens'));
      if (key != null && !(key instanceof KeyObject)) {
        try { key = createPublicKey(key); } catch (_) {
          try { key = createSecretKey(typeof key === "string" ? Buffer.from(key) : key); } catch (_e) {
            return done(new JsonWebTokenError("secretOrPublicKey is not valid key material"));
          }
        }
      }
      if (!options.algorithms) {
        if (key.type === "secret") options.algorithms = HS_ALGS;
        else if (["rsa", "rsa-pss"].includes(key.asymmetricKeyType)) options.algorithms = RSA_KEY_ALGS;
        else if (key.asymmetricKeyType === "ec") options.algorithms = EC_KEY_ALGS;
        else options.algorithms = PUB_KEY_ALGS;
      }
      if (options.algorithms.indexOf(decoded.header.alg) === -1) return done(new JsonWebTokenError("invalid algorithm"));
      if (header.alg.startsWith("HS") && key.type !== "secret") return done(new JsonWebTokenError(`secretOrPublicKey must be a symmetric key when using ${header.alg}`));
      if (/^(?:RS|PS|ES)/.test(header.alg) && key.type !== "public") return done(new JsonWebTokenError(`secretOrPublicKey must be an asymmetric key when using ${header.alg}`));
      if (!options.allowInvalidAsymmetricKeyTypes) {
        try { validateAsymmetricKey(header.alg, key); } catch (e) { return done(e); }
      }
      let valid;
      try {
        valid = hostx("jwt_verify", header.alg, parts.slice(0, 2).join("."), parts[2], header.alg === "none" ? null : hostKey(header.alg, key));
      } catch (e) { return done(e); }
      if (!valid) return done(new JsonWebTokenError("invalid signature"));
      const payload = decoded.payload;
      const tolerance = options.clockTolerance || 0;
      if (typeof payload.nbf !== "undefined" && !options.ignoreNotBefore) {
        if (typeof payload.nbf !== "number") return done(new JsonWebTokenError("invalid nbf value"));
        if (payload.nbf > clockTimestamp + tolerance) return done(new NotBeforeError("jwt not active", new Date(payload.nbf * 1000)));
      }
      if (typeof payload.exp !== "undefined" && !options.ignoreExpiration) {
        if (typeof payload.exp !== "number") return done(new JsonWebTokenError("invalid exp value"));
        if (clockTimestamp >= payload.exp + tolerance) return done(new TokenExpiredError("jwt expired", new Date(payload.exp * 1000)));
      }
      if (options.audience) {
        const audiences = Array.isArray(options.audience) ? options.audience : [options.audience];
        const target = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
        const match = target.some((t) => audiences.some((a) => (a instanceof RegExp ? a.test(t) : a === t)));
        if (!match) return done(new JsonWebTokenError("jwt audience invalid. expected: " + audiences.join(" or ")));
      }
      if (options.issuer) {
        const bad = (typeof options.issuer === "string" && payload.iss !== options.issuer) || (Array.isArray(options.issuer) && options.issuer.indexOf(payload.iss) === -1);
        if (bad) return done(new JsonWebTokenError("jwt issuer invalid. expected: " + options.issuer));
      }
      if (options.subject && payload.sub !== options.subject) return done(new JsonWebTokenError("jwt subject invalid. expected: " + options.subject));
      if (options.jwtid && payload.jti !== options.jwtid) return done(new JsonWebTokenError("jwt jwtid invalid. expected: " + options.jwtid));
      if (options.nonce && payload.nonce !== options.nonce) return done(new JsonWebTokenError("jwt nonce invalid. expected: " + options.nonce));
      if (options.maxAge) {
        if (typeof payload.iat !== "number") return done(new JsonWebTokenError("iat required when maxAge is specified"));
        const maxAgeTimestamp = timespan(options.maxAge, payload.iat);
        if (typeof maxAgeTimestamp === "undefined") return done(new JsonWebTokenError('"maxAge" should be a number of seconds or string representing a timespan eg: "1d", "20h", 60'));
        if (clockTimestamp >= maxAgeTimestamp + tolerance) return done(new TokenExpiredError("maxAge exceeded", new Date(maxAgeTimestamp * 1000)));
      }
      if (options.complete === true) return done(null, { header, payload, signature: decoded.signature });
      return done(null, payload);
    });
  }

  return Object.freeze({ decode, verify, sign, JsonWebTokenError, NotBeforeError, TokenExpiredError });
});
