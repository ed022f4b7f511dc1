// `AWS`, shaped like aws-sdk v2 (lazy built-in, see 30_builtins.js): AWS.config, Credentials,
// Endpoint and one class per service (`new AWS.S3({...}).putObject(params).promise()` or with a
// callback). botocore on the host (runner/builtins/aws_host.py) validates, serializes and signs
// each call; the request goes out through the ordinary `fetch`; botocore parses the answer.
(function (deps) {
  "use strict";
  const { hostx, Buffer, fetch, latin1FromBytes } = deps;
  const SERVICES = hostx("aws_services"); // class name -> botocore service

  // ---- values across the bridge: bytes and dates are tagged
  function toHost(v, depth = 0) {
    if (depth > 64) throw awsError("InvalidParameterType", "params are nested too deeply");
    if (v === null || typeof v !== "object") return typeof v === "function" ? undefined : v;
    if (v instanceof Date) return { __date: v.toISOString() };
    if (v instanceof ArrayBuffer) return { __bytes: latin1FromBytes(new Uint8Array(v)) };
    if (ArrayBuffer.isView(v)) return { __bytes: latin1FromBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
    if (Array.isArray(v)) return v.map((x) => toHost(x, depth + 1));
    if (v instanceof Set) return Array.from(v, (x) => toHost(x, depth + 1));
    const o = {};
    for (const k of Object.keys(v)) if (v[k] !== undefined) o[k] = toHost(v[k], depth + 1);
    return o;
  }
  function fromHost(v) {
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(fromHost);
    if (typeof v.__bytes === "string" && Object.keys(v).length === 1) return Buffer.from(v.__bytes, "latin1");
    if (typeof v.__date === "string" && Object.keys(v).length === 1) return new Date(v.__date);
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromHost(v[k]);
    return o;
  }

  function awsError(code, message, extra) {
    const e = new Error(message);
    Object.defineProperty(e, "name", { value: code, writable: true, configurable: true });
    e.code = code;
    e.time = new Date();
    Object.assign(e, extra || {});
    if (e.retryable === undefined) e.retryable = false;
    return e;
  }

  // ---- configuration
  class Credentials {
    constructor(accessKeyId, secretAccessKey, sessionToken) {
      const o = accessKeyId && typeof accessKeyId === "object" ? accessKeyId : { accessKeyId, secretAccessKey, sessionToken };
      this.accessKeyId = o.accessKeyId; this.secretAccessKey = o.secretAccessKey; this.sessionToken = o.sessionToken;
      this.expired = false;
    }
    get(cb) { if (cb) cb(null); }
    getPromise() { return Promise.resolve(); }
  }
  class Endpoint {
    constructor(endpoint) {
      const href = String(endpoint);
      const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(href) ? href : `https://${href}`);
      this.protocol = u.protocol; this.hostname = u.hostname; this.host = u.host;
      this.port = Number(u.port) || (u.protocol === "http:" ? 80 : 443);
      this.pathname = u.pathname; this.path = u.pathname + u.search; this.href = u.href;
    }
  }
  const CONFIG_KEYS = ["region", "accessKeyId", "secretAccessKey", "sessionToken", "credentials", "endpoint", "s3ForcePathStyle",
    "sslEnabled", "maxRetries", "httpOptions", "apiVersion", "apiVersions", "params", "signatureVersion", "logger",
    "correctClockSkew", "systemClockOffset", "s3BucketEndpoint", "s3UseArnRegion", "useDualstackEndpoint", "useFipsEndpoint",
    "computeChecksums", "convertResponseTypes", "dynamoDbCrc32", "paramValidation", "retryDelayOptions", "customUserAgent"];
  class Config {
    constructor(options) {
      this.region = undefined; this.credentials = null; this.sslEnabled = true; this.s3ForcePathStyle = false;
      this.maxRetries = undefined; this.httpOptions = { timeout: 120000 }; this.apiVersions = {};
      this.update(options || {}, true);
    }
    update(options, allowUnknownKeys) {
      options = options || {};
      for (const k of Object.keys(options)) {
        if (!allowUnknownKeys && !CONFIG_KEYS.includes(k) && !(k in SERVICES_LOWER)) continue;
        if (k === "accessKeyId" || k === "secretAccessKey" || k === "sessionToken") {
          if (!(this.credentials instanceof Credentials)) this.credentials = new Credentials(this.credentials || {});
          this.credentials[k] = options[k];
        } else this[k] = options[k];
      }
    }
    get accessKeyId() { return this.credentials ? this.credentials.accessKeyId : undefined; }
    get secretAccessKey() { return this.credentials ? this.credentials.secretAccessKey : undefined; }
    get sessionToken() { return this.credentials ? this.credentials.sessionToken : undefined; }
    set accessKeyId(v) { this.update({ accessKeyId: v }); }
    set secretAccessKey(v) { this.update({ secretAccessKey: v }); }
    set sessionToken(v) { this.update({ sessionToken: v }); }
    loadFromPath() { throw awsError("ConfigError", "AWS.config.loadFromPath is not available in functions"); }
  }
  const SERVICES_LOWER = {};
  for (const name of Object.keys(SERVICES)) SERVICES_LOWER[name.toLowerCase()] = name;
  const globalConfig = new Config();

  /** What the host needs from a client's config: region, credentials, endpoint, addressing. */
  function hostConfig(config) {
    const creds = config.credentials || {};
    const ep = config.endpoint;
    return {
      region: config.region, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey,
      sessionToken: creds.sessionToken || undefined,
      endpoint: ep === undefined || ep === null ? undefined : ep instanceof Endpoint ? ep.href : String(ep),
      s3ForcePathStyle: !!config.s3ForcePathStyle, sslEnabled: config.sslEnabled !== false,
    };
  }

  // ---- one call
  /** One call with v2's retries: retryable errors (5xx, throttling, network) are tried again,
   * re-signed, after `random * 2^n * base` ms, up to maxRetries (3; DynamoDB 10; at most 10 here). */
  async function perform(service, op, params) {
    const cls = service.constructor.serviceIdentifierClass;
    const c = service.config;
    const max = typeof c.maxRetries === "number" ? Math.max(0, Math.min(10, Math.floor(c.maxRetries))) : cls === "DynamoDB" ? 10 : 3;
    const base = (c.retryDelayOptions && typeof c.retryDelayOptions.base === "number") ? c.retryDelayOptions.base : cls === "DynamoDB" ? 50 : 100;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await performOnce(service, op, params);
        r.retryCount = attempt;
        return r;
      } catch (e) {
        if (!e.retryable || attempt >= max) { e.retryCount = attempt; throw e; }
        const delay = Math.random() * Math.pow(2, attempt) * base;
        e.retryDelay = delay;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async function performOnce(service, op, params) {
    const cls = service.constructor.serviceIdentifierClass;
    const cfg = hostConfig(service.config);
    let built;
    try {
      built = hostx("aws_request", cls, op, toHost(Object.assign({}, service.config.params || {}, params || {})), cfg);
    } catch (e) {
      throw awsError(e.code || e.name, e.message, { region: cfg.region }); // v2's local errors: validation, config, credentials
    }
    let res, bytes;
    const timeout = service.config.httpOptions && service.config.httpOptions.timeout;
    try {
      res = await fetch(built.url, {
        method: built.method, headers: built.headers, redirect: "manual",
        body: built.body === null ? undefined : Buffer.from(built.body, "latin1"),
        timeout: typeof timeout === "number" ? timeout : 0,
      });
      bytes = await res.buffer(); // exact: an S3 object need not be UTF-8
    } catch (e) {
      throw awsError("NetworkingError", e && e.message ? e.message : String(e), {
        retryable: true, region: cfg.region, hostname: new URL(built.url).hostname, originalError: e,
      });
    }
    const headers = [];
    res.headers.forEach((v, k) => headers.push([k, v]));
    const parsed = hostx("aws_response", cls, op, res.status, headers, latin1FromBytes(bytes), cfg);
    if (parsed.error) {
      throw awsError(parsed.error.code, parsed.error.message, Object.assign({}, parsed.error, {
        region: cfg.region, hostname: new URL(built.url).hostname,
      }));
    }
    return { data: fromHost(parsed.data), requestId: parsed.requestId };
  }

  class Response {
    constructor(request) { this.request = request; this.data = null; this.error = null; this.requestId = null; this.retryCount = 0; this.redirectCount = 0; }
  }
  class Request {
    constructor(service, operation, params) {
      this.service = service; this.operation = operation; this.params = params || {};
      this.response = new Response(this); this._promise = null; this._listeners = {};
    }
    _run() {
      if (!this._promise) {
        this._promise = perform(this.service, this.operation, this.params).then(
          (r) => { this.response.data = r.data; this.response.requestId = r.requestId; this.response.retryCount = r.retryCount; this._emit("success", this.response); this._emit("complete", this.response); return r.data; },
          (e) => { this.response.error = e; this._emit("error", e, this.response); this._emit("complete", this.response); throw e; });
      }
      return this._promise;
    }
    promise() { return this._run(); }
    send(callback) {
      const p = this._run();
      if (typeof callback === "function") p.then((d) => callback.call(this.response, null, d), (e) => callback.call(this.response, e, null));
      else p.catch(() => {});
      return this;
    }
    on(event, fn) { (this._listeners[event] = this._listeners[event] || []).push(fn); return this; }
    _emit(event, ...args) { for (const fn of this._listeners[event] || []) { try { fn.apply(this, args); } catch (e) { /* as v2: a listener's error is its own */ } } }
    abort() { return this; }
    createReadStream() { throw awsError("NotImplemented", "streams are not available in functions; use .promise() and the Buffer it returns"); }
  }

  class Service {
    constructor(options) {
      const cls = this.constructor;
      installOperations(cls);
      const own = Object.assign({}, options || {});
      const global = AWS.config instanceof Config ? AWS.config : new Config(AWS.config || {}); // a function may replace it
      const perService = global[cls.serviceIdentifierClass.toLowerCase()] || {};
      this.config = new Config(Object.assign({}, global, perService, own, {
        credentials: own.credentials || (own.accessKeyId ? null : global.credentials),
      }));
      if (own.accessKeyId || own.secretAccessKey) this.config.update({ accessKeyId: own.accessKeyId, secretAccessKey: own.secretAccessKey, sessionToken: own.sessionToken });
      if (this.config.endpoint !== undefined && this.config.endpoint !== null) this.endpoint = new Endpoint(this.config.endpoint instanceof Endpoint ? this.config.endpoint.href : this.config.endpoint);
    }
    makeRequest(operation, params, callback) {
      if (typeof params === "function") { callback = params; params = {}; }
      const names = this.constructor._operations;
      const op = names[operation] || operation;
      const req = new Request(this, op, params);
      if (typeof callback === "function") req.send(callback);
      return req;
    }
  }
  // S3's extras in v2: managed upload (one putObject here: bodies are capped well below
  // multipart sizes) and presigned URLs.
  const S3_EXTRAS = {
    upload(params, options, callback) {
      if (typeof options === "function") { callback = options; options = undefined; }
      const service = this;
      const req = new Request(this, "PutObject", params);
      req._run = function () {
        if (!this._promise) {
          this._promise = perform(service, "PutObject", this.params).then((r) => {
            const p = this.params;
            const base = service.endpoint ? service.endpoint.href.replace(/\/$/, "") : `https://${p.Bucket}.s3.${service.config.region}.amazonaws.com`;
            const path = service.endpoint ? `/${p.Bucket}/${encodeURI(p.Key)}` : `/${encodeURI(p.Key)}`;
            const data = Object.assign({}, r.data, { Location: base + path, key: p.Key, Key: p.Key, Bucket: p.Bucket });
            this.response.data = data;
            return data;
          });
        }
        return this._promise;
      };
      if (typeof callback === "function") req.send(callback);
      return req;
    },
    getSignedUrl(operation, params, callback) {
      const p = Object.assign({}, params || {});
      const expires = p.Expires === undefined ? 900 : p.Expires;
      delete p.Expires;
      const op = this.constructor._operations[operation] || operation;
      let url, err = null;
      try {
        url = hostx("aws_presign", this.constructor.serviceIdentifierClass, op, toHost(p), hostConfig(this.config), expires);
      } catch (e) { err = awsError(e.code || e.name, e.message); }
      if (typeof callback === "function") { Promise.resolve().then(() => callback(err, err ? undefined : url)); return undefined; }
      if (err) throw err;
      return url;
    },
    getSignedUrlPromise(operation, params) {
      return new Promise((resolve, reject) => this.getSignedUrl(operation, params, (e, u) => (e ? reject(e) : resolve(u))));
    },
  };
  function installOperations(cls) {
    if (cls._operations) return;
    const ops = {};
    for (const pascal of hostx("aws_operations", cls.serviceIdentifierClass)) {
      const lower = pascal.charAt(0).toLowerCase() + pascal.slice(1);
      ops[lower] = pascal;
      Object.defineProperty(cls.prototype, lower, {
        value: function (params, callback) { return this.makeRequest(lower, params, callback); },
        writable: true, configurable: true, enumerable: false,
      });
    }
    if (cls.serviceIdentifierClass === "S3") {
      for (const [name, fn] of Object.entries(S3_EXTRAS)) Object.defineProperty(cls.prototype, name, { value: fn, writable: true, configurable: true, enumerable: false });
    }
    cls._operations = ops;
  }
  const classes = new Map();
  function serviceClass(name) {
    if (!classes.has(name)) {
      const cls = { [name]: class extends Service {} }[name];
      cls.serviceIdentifierClass = name;
      cls.serviceIdentifier = SERVICES[name];
      classes.set(name, cls);
    }
    return classes.get(name);
  }

  // ---- DynamoDB's DocumentClient and Converter (native JS values <-> AttributeValues)
  class DynamoDBSet {
    constructor(list, options) {
      this.wrapperName = "Set";
      this.values = [].concat(list);
      const first = this.values[0];
      this.type = typeof first === "number" ? "Number" : typeof first === "string" ? "String" : "Binary";
      if (options && options.validate) {
        for (const v of this.values) if (typeOfSetValue(v) !== this.type) throw awsError("ValidationException", `${this.type} Set contains ${typeOfSetValue(v)} value`);
      }
    }
    toJSON() { return this.values; }
  }
  const typeOfSetValue = (v) => (typeof v === "number" ? "Number" : typeof v === "string" ? "String" : "Binary");
  const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  function marshall(v, options) {
    const o = options || {};
    if (v === null) return { NULL: true };
    if (typeof v === "string") return v === "" && o.convertEmptyValues ? { NULL: true } : { S: v };
    if (typeof v === "number" || typeof v === "bigint") return { N: String(v) };
    if (typeof v === "boolean") return { BOOL: v };
    if (isBinary(v)) return v.byteLength === 0 && o.convertEmptyValues ? { NULL: true } : { B: v };
    if (v instanceof DynamoDBSet) {
      if (!v.values.length && o.convertEmptyValues) return { NULL: true };
      return v.type === "Number" ? { NS: v.values.map(String) } : v.type === "String" ? { SS: v.values.slice() } : { BS: v.values.slice() };
    }
    if (Array.isArray(v)) return { L: v.filter((x) => x !== undefined && typeof x !== "function").map((x) => marshall(x, o)) };
    if (typeof v === "object") return { M: marshallMap(v, o) };
    return undefined;
  }
  function marshallMap(obj, o) {
    const out = {};
    for (const k of Object.keys(obj || {})) {
      const m = marshall(obj[k], o);
      if (m !== undefined) out[k] = m;
    }
    return out;
  }
  function unmarshall(av, options) {
    const o = options || {};
    if (!av || typeof av !== "object") return av;
    if ("S" in av) return av.S;
    if ("N" in av) return o.wrapNumbers ? { value: av.N, wrapperName: "NumberValue", toString() { return this.value; } } : Number(av.N);
    if ("BOOL" in av) return av.BOOL;
    if ("NULL" in av) return null;
    if ("B" in av) return av.B;
    if ("SS" in av) return new DynamoDBSet(av.SS);
    if ("NS" in av) return new DynamoDBSet(av.NS.map((n) => (o.wrapNumbers ? n : Number(n))));
    if ("BS" in av) return new DynamoDBSet(av.BS);
    if ("L" in av) return av.L.map((x) => unmarshall(x, o));
    if ("M" in av) return unmarshallMap(av.M, o);
    return undefined;
  }
  function unmarshallMap(m, o) {
    const out = {};
    for (const k of Object.keys(m || {})) out[k] = unmarshall(m[k], o);
    return out;
  }
  const Converter = Object.freeze({
    input: marshall, output: unmarshall,
    marshall: (obj, o) => marshallMap(obj, o), unmarshall: (m, o) => unmarshallMap(m, o),
  });

  // Which keys of DynamoDB requests and responses hold items (maps), lists of items, or values;
  // and which are structure to walk through (their own keys are table or attribute names).
  const ITEM_KEYS = new Set(["Item", "Key", "ExclusiveStartKey", "LastEvaluatedKey", "Attributes", "ExpressionAttributeValues", "ItemCollectionKey"]);
  const ITEM_LIST_KEYS = new Set(["Items", "Keys"]);
  const VALUE_KEYS = new Set(["Value"]);
  const VALUE_LIST_KEYS = new Set(["AttributeValueList", "SizeEstimateRangeGB"]);
  const WALK_KEYS = new Set(["RequestItems", "TransactItems", "Put", "Update", "Delete", "ConditionCheck", "Get", "PutRequest",
    "DeleteRequest", "Expected", "KeyConditions", "QueryFilter", "ScanFilter", "AttributeUpdates", "UnprocessedKeys",
    "UnprocessedItems", "CancellationReasons", "ItemCollectionMetrics", "Responses"]);
  const DYNAMIC_KEYS = new Set(["RequestItems", "Expected", "KeyConditions", "QueryFilter", "ScanFilter", "AttributeUpdates",
    "UnprocessedKeys", "UnprocessedItems", "ItemCollectionMetrics", "Responses"]);
  function translate(v, key, toWire, o) {
    const item = (x) => (toWire ? marshallMap(x, o) : unmarshallMap(x, o));
    const value = (x) => (toWire ? marshall(x, o) : unmarshall(x, o));
    if (v === null || typeof v !== "object" || isBinary(v)) return v;
    if (key === "Responses" && !toWire && !Array.isArray(v)) { // batchGet: table -> items
      const out = {};
      for (const t of Object.keys(v)) out[t] = Array.isArray(v[t]) ? v[t].map(item) : v[t];
      return out;
    }
    if (ITEM_KEYS.has(key)) return item(v);
    if (ITEM_LIST_KEYS.has(key) && Array.isArray(v)) return v.map(item);
    if (VALUE_KEYS.has(key)) return value(v);
    if (VALUE_LIST_KEYS.has(key) && Array.isArray(v) && key === "AttributeValueList") return v.map(value);
    if (Array.isArray(v)) return v.map((x) => translate(x, null, toWire, o));
    const out = {};
    for (const k of Object.keys(v)) {
      out[k] = key !== null && DYNAMIC_KEYS.has(key) ? walkInside(v[k], toWire, o) : WALK_KEYS.has(k) || ITEM_KEYS.has(k) || ITEM_LIST_KEYS.has(k) || VALUE_KEYS.has(k) || VALUE_LIST_KEYS.has(k) ? translate(v[k], k, toWire, o) : v[k];
    }
    return out;
  }
  function walkInside(v, toWire, o) { // the value under a table or attribute name
    if (Array.isArray(v)) return v.map((x) => translate(x, null, toWire, o));
    return translate(v, null, toWire, o);
  }
  function translateTop(params, toWire, o) {
    const out = {};
    for (const k of Object.keys(params || {})) out[k] = translate(params[k], k, toWire, o);
    return out;
  }

  const DOC_OPERATIONS = { get: "getItem", put: "putItem", update: "updateItem", delete: "deleteItem", query: "query", scan: "scan",
    batchGet: "batchGetItem", batchWrite: "batchWriteItem", transactGet: "transactGetItems", transactWrite: "transactWriteItems" };
  class DocumentRequest extends Request {
    constructor(doc, op, params) { super(doc.service, op, params); this._doc = doc; }
    _run() {
      if (!this._promise) {
        const o = this._doc.options;
        const wire = translateTop(this.params, true, o);
        this._promise = perform(this.service, this.operation, wire).then(
          (r) => { const data = translateTop(r.data, false, o); this.response.data = data; this.response.requestId = r.requestId; this._emit("success", this.response); this._emit("complete", this.response); return data; },
          (e) => { this.response.error = e; this._emit("error", e, this.response); this._emit("complete", this.response); throw e; });
      }
      return this._promise;
    }
  }
  class DocumentClient {
    constructor(options) {
      const o = Object.assign({}, options || {});
      this.service = o.service || new (serviceClass("DynamoDB"))(o);
      installOperations(this.service.constructor);
      this.options = { convertEmptyValues: !!o.convertEmptyValues, wrapNumbers: !!o.wrapNumbers };
    }
    createSet(list, options) { return new DynamoDBSet(list, options); }
  }
  for (const [method, op] of Object.entries(DOC_OPERATIONS)) {
    Object.defineProperty(DocumentClient.prototype, method, {
      value: function (params, callback) {
        if (typeof params === "function") { callback = params; params = {}; }
        const pascal = op.charAt(0).toUpperCase() + op.slice(1);
        const req = new DocumentRequest(this, pascal, params);
        if (typeof callback === "function") req.send(callback);
        return req;
      },
      writable: true, configurable: true, enumerable: false,
    });
  }

  const AWS = { config: globalConfig, Config, Credentials, Endpoint, Request, Response, Service, VERSION: "2.1693.0" };
  for (const name of Object.keys(SERVICES)) {
    Object.defineProperty(AWS, name, {
      get() {
        const cls = serviceClass(name);
        if (name === "DynamoDB" && !cls.DocumentClient) Object.assign(cls, { DocumentClient, Converter });
        return cls;
      },
      enumerable: true, configurable: false,
    });
  }
  AWS.util = Object.freeze({ buffer: { toBuffer: (v) => Buffer.from(v) }, date: { getDate: () => new Date() } });
  return AWS; // not frozen: `AWS.config = new AWS.Config({...})` is a documented v2 pattern
});
