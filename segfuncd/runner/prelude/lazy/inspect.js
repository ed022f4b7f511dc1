// Node 20's util.inspect / util.format, for console (prelude/15_console.js), loaded on the
// first console call that prints more than strings and numbers.
//
// A port of Node v20's lib/internal/util/inspect.js and lib/internal/cli_table.js (MIT,
// Copyright Node.js contributors and Joyent, Inc.): the same algorithm, so the same text —
// line breaking at 80 columns with `compact: 3`, array grouping, depth 2, circular refs,
// Map/Set/Date/RegExp/Error/class instances, %s %d %i %f %j %o %O %c. What QuickJS cannot
// show as V8 does: a Promise's state (printed `Promise { <pending> }`), a Proxy (printed
// as its target), Map/Set iterators' entries, and stack frames (QuickJS's own; the
// dispatcher's frames at the bottom are dropped). Colors are never used.
(function (deps) {
  "use strict";
  const URLClass = deps.URL;
  const BufferClass = deps.Buffer;
  const SearchParamsClass = deps.URLSearchParams;
  const _apply = Reflect.apply;
  const _toString = Object.prototype.toString;
  const _hasOwn = Object.prototype.hasOwnProperty;
  const _isEnum = Object.prototype.propertyIsEnumerable;
  const _fnToString = Function.prototype.toString;
  const getter = (proto, key) => Object.getOwnPropertyDescriptor(proto, key).get;
  const _mapSize = getter(Map.prototype, "size");
  const _setSize = getter(Set.prototype, "size");
  const _abLength = getter(ArrayBuffer.prototype, "byteLength");
  const _dvLength = getter(DataView.prototype, "byteLength");
  const _taTag = getter(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag);
  const _taLength = getter(Object.getPrototypeOf(Uint8Array.prototype), "length");
  const _reSource = getter(RegExp.prototype, "source");
  const _dateGetTime = Date.prototype.getTime;
  const _weakMapHas = WeakMap.prototype.has;
  const _weakSetHas = WeakSet.prototype.has;
  const AsyncFunctionProto = Object.getPrototypeOf(async function () {});
  const GeneratorFunctionProto = Object.getPrototypeOf(function* () {});
  const AsyncGeneratorFunctionProto = Object.getPrototypeOf(async function* () {});
  const customInspectSymbol = Symbol.for("nodejs.util.inspect.custom");

  const hasOwn = (o, k) => _apply(_hasOwn, o, [k]);
  const tagOf = (v) => _apply(_toString, v, []).slice(8, -1);
  const works = (fn, v) => { try { _apply(fn, v, []); return true; } catch (e) { return false; } };
  const isMap = (v) => works(_mapSize, v);
  const isSet = (v) => works(_setSize, v);
  const isDate = (v) => works(_dateGetTime, v);
  const isRegExp = (v) => v !== RegExp.prototype && works(_reSource, v);
  const isTypedArray = (v) => _apply(_taTag, v, []) !== undefined;
  const isArrayBuffer = (v) => works(_abLength, v);
  const isDataView = (v) => works(_dvLength, v);
  const isWeakMap = (v) => { try { _apply(_weakMapHas, v, [{}]); return true; } catch (e) { return false; } };
  const isWeakSet = (v) => { try { _apply(_weakSetHas, v, [{}]); return true; } catch (e) { return false; } };
  const isPromise = (v) => v instanceof Promise || tagOf(v) === "Promise";
  const isError = (v) => v instanceof Error || tagOf(v) === "Error";
  const isArguments = (v) => tagOf(v) === "Arguments";
  const isAsyncFunction = (f) => { const p = Object.getPrototypeOf(f); return p === AsyncFunctionProto || p === AsyncGeneratorFunctionProto; };
  const isGeneratorFunction = (f) => { const p = Object.getPrototypeOf(f); return p === GeneratorFunctionProto || p === AsyncGeneratorFunctionProto; };
  const boxed = [
    [Number.prototype.valueOf, "Number"], [String.prototype.valueOf, "String"],
    [Boolean.prototype.valueOf, "Boolean"], [BigInt.prototype.valueOf, "BigInt"], [Symbol.prototype.valueOf, "Symbol"],
  ];
  function boxedType(v) {
    for (const [fn, type] of boxed) if (works(fn, v)) return type;
    return null;
  }

  const inspectDefaultOptions = {
    showHidden: false, depth: 2, colors: false, customInspect: true, showProxy: false,
    maxArrayLength: 100, maxStringLength: 10000, breakLength: 80, compact: 3, sorted: false,
    getters: false, numericSeparator: false,
  };
  const kObjectType = 0;
  const kArrayType = 1;
  const kArrayExtrasType = 2;
  /* eslint-disable no-control-regex */
  const strEscapeSequencesRegExp = /[\x00-\x1f\x27\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const strEscapeSequencesReplacer = /[\x00-\x1f\x27\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const strEscapeSequencesRegExpSingle = /[\x00-\x1f\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
  const strEscapeSequencesReplacerSingle = /[\x00-\x1f\x5c\x7f-\x9f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const keyStrRegExp = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const numberRegExp = /^(0|[1-9][0-9]*)$/;
  const classRegExp = /^(\s+[^(]*?)\s*{/;
  const stripCommentsRegExp = /(\/\/.*?\n)|(\/\*(.|\n)*?\*\/)/g;
  const kMinLineLength = 16;
  const meta = [
    "\\x00", "\\x01", "\\x02", "\\x03", "\\x04", "\\x05", "\\x06", "\\x07",
    "\\b", "\\t", "\\n", "\\x0B", "\\f", "\\r", "\\x0E", "\\x0F",
    "\\x10", "\\x11", "\\x12", "\\x13", "\\x14", "\\x15", "\\x16", "\\x17",
    "\\x18", "\\x19", "\\x1A", "\\x1B", "\\x1C", "\\x1D", "\\x1E", "\\x1F",
    "", "", "", "", "", "", "", "\\'", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "\\\\", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "\\x7F",
    "\\x80", "\\x81", "\\x82", "\\x83", "\\x84", "\\x85", "\\x86", "\\x87",
    "\\x88", "\\x89", "\\x8A", "\\x8B", "\\x8C", "\\x8D", "\\x8E", "\\x8F",
    "\\x90", "\\x91", "\\x92", "\\x93", "\\x94", "\\x95", "\\x96", "\\x97",
    "\\x98", "\\x99", "\\x9A", "\\x9B", "\\x9C", "\\x9D", "\\x9E", "\\x9F",
  ];
  const ansi = new RegExp(
    "[\\u001B\\u009B][[\\]()#;?]*" +
    "(?:(?:(?:(?:;[-a-zA-Z\\d\\/\\#&.:=?%@~_]+)*" +
    "|[a-zA-Z\\d]+(?:;[-a-zA-Z\\d\\/\\#&.:=?%@~_]*)*)?" +
    "(?:\\u0007|\\u001B\\u005C|\\u009C))" +
    "|(?:(?:\\d{1,4}(?:;\\d{0,4})*)?" +
    "[\\dA-PR-TZcf-nq-uy=><~]))", "g");
  // Node's builtInObjects: the capitalised globals of a fresh Node 20 process.
  const builtInObjects = new Set(("Object Function Array Number Boolean String Symbol Date Promise RegExp Error " +
    "AggregateError EvalError RangeError ReferenceError SyntaxError TypeError URIError ArrayBuffer Uint8Array " +
    "Int8Array Uint16Array Int16Array Uint32Array Int32Array Float32Array Float64Array Uint8ClampedArray " +
    "BigUint64Array BigInt64Array DataView Map BigInt Set WeakMap WeakSet Proxy Reflect FinalizationRegistry " +
    "WeakRef SharedArrayBuffer JSON Math Intl Atomics WebAssembly Buffer URL URLSearchParams TextEncoder TextDecoder " +
    "AbortController AbortSignal EventTarget Event MessageChannel MessagePort MessageEvent Blob BroadcastChannel " +
    "DOMException Headers Request Response FormData File Performance PerformanceEntry Crypto CryptoKey " +
    "SubtleCrypto CustomEvent ReadableStream WritableStream TransformStream CompressionStream DecompressionStream").split(" "));
  const wellKnownPrototypes = new Map([[Object.prototype, { name: "Object", constructor: Object }],
    [Function.prototype, { name: "Function", constructor: Function }]]);

  function join(output, separator) {
    let str = "";
    if (output.length !== 0) {
      const lastIndex = output.length - 1;
      for (let i = 0; i < lastIndex; i++) { str += output[i]; str += separator; }
      str += output[lastIndex];
    }
    return str;
  }

  function isZeroWidthCodePoint(code) {
    return code <= 0x1F || (code >= 0x7F && code <= 0x9F) || (code >= 0x300 && code <= 0x36F) ||
      (code >= 0x200B && code <= 0x200F) || (code >= 0x20D0 && code <= 0x20FF) ||
      (code >= 0xFE00 && code <= 0xFE0F) || (code >= 0xFE20 && code <= 0xFE2F) ||
      (code >= 0xE0100 && code <= 0xE01EF);
  }
  function isFullWidthCodePoint(code) {
    return code >= 0x1100 && (code <= 0x115f || code === 0x2329 || code === 0x232a ||
      (code >= 0x2e80 && code <= 0x3247 && code !== 0x303f) || (code >= 0x3250 && code <= 0x4dbf) ||
      (code >= 0x4e00 && code <= 0xa4c6) || (code >= 0xa960 && code <= 0xa97c) ||
      (code >= 0xac00 && code <= 0xd7a3) || (code >= 0xf900 && code <= 0xfaff) ||
      (code >= 0xfe10 && code <= 0xfe19) || (code >= 0xfe30 && code <= 0xfe6b) ||
      (code >= 0xff01 && code <= 0xff60) || (code >= 0xffe0 && code <= 0xffe6) ||
      (code >= 0x1b000 && code <= 0x1b001) || (code >= 0x1f200 && code <= 0x1f251) ||
      (code >= 0x1f300 && code <= 0x1f64f) || (code >= 0x20000 && code <= 0x3fffd));
  }
  function getStringWidth(str, removeControlChars = true) {
    let width = 0;
    if (removeControlChars) str = str.replace(ansi, "");
    for (let i = 0; i < str.length; i++) {
      const code = str.charCodeAt(i);
      if (code >= 127) {
        for (const char of str.slice(i).normalize("NFC")) {
          const cp = char.codePointAt(0);
          if (isFullWidthCodePoint(cp)) width += 2;
          else if (!isZeroWidthCodePoint(cp)) width++;
        }
        break;
      }
      width += code >= 32 ? 1 : 0;
    }
    return width;
  }

  function inspect(value, opts) {
    const ctx = {
      budget: {}, indentationLvl: 0, seen: [], currentDepth: 0, stylize: stylizeNoColor,
      showHidden: inspectDefaultOptions.showHidden, depth: inspectDefaultOptions.depth, colors: false,
      customInspect: inspectDefaultOptions.customInspect, showProxy: false,
      maxArrayLength: inspectDefaultOptions.maxArrayLength, maxStringLength: inspectDefaultOptions.maxStringLength,
      breakLength: inspectDefaultOptions.breakLength, compact: inspectDefaultOptions.compact,
      sorted: inspectDefaultOptions.sorted, getters: inspectDefaultOptions.getters,
      numericSeparator: inspectDefaultOptions.numericSeparator,
    };
    if (arguments.length > 1) {
      if (typeof opts === "boolean") {
        ctx.showHidden = opts;
      } else if (opts) {
        for (const key of Object.keys(opts)) {
          if (hasOwn(inspectDefaultOptions, key) || key === "stylize") ctx[key] = opts[key];
          else if (ctx.userOptions === undefined) ctx.userOptions = opts;
        }
      }
    }
    ctx.colors = false;
    if (typeof ctx.stylize !== "function") ctx.stylize = stylizeNoColor;
    if (ctx.maxArrayLength === null) ctx.maxArrayLength = Infinity;
    if (ctx.maxStringLength === null) ctx.maxStringLength = Infinity;
    return formatValue(ctx, value, 0);
  }
  inspect.custom = customInspectSymbol;

  function getUserOptions(ctx) {
    return {
      stylize: ctx.stylize, showHidden: ctx.showHidden, depth: ctx.depth, colors: ctx.colors,
      customInspect: ctx.customInspect, showProxy: ctx.showProxy, maxArrayLength: ctx.maxArrayLength,
      maxStringLength: ctx.maxStringLength, breakLength: ctx.breakLength, compact: ctx.compact,
      sorted: ctx.sorted, getters: ctx.getters, numericSeparator: ctx.numericSeparator, ...ctx.userOptions,
    };
  }

  function addQuotes(str, quotes) {
    if (quotes === -1) return `"${str}"`;
    if (quotes === -2) return `\`${str}\``;
    return `'${str}'`;
  }
  function escapeFn(str) {
    const charCode = str.charCodeAt(0);
    return meta.length > charCode ? meta[charCode] : `\\u${charCode.toString(16)}`;
  }
  function strEscape(str) {
    let escapeTest = strEscapeSequencesRegExp;
    let escapeReplace = strEscapeSequencesReplacer;
    let singleQuote = 39;
    if (str.includes("'")) {
      if (!str.includes('"')) singleQuote = -1;
      else if (!str.includes("`") && !str.includes("${")) singleQuote = -2;
      if (singleQuote !== 39) { escapeTest = strEscapeSequencesRegExpSingle; escapeReplace = strEscapeSequencesReplacerSingle; }
    }
    if (str.length < 5000 && escapeTest.exec(str) === null) return addQuotes(str, singleQuote);
    if (str.length > 100) return addQuotes(str.replace(escapeReplace, escapeFn), singleQuote);
    let result = "";
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const point = str.charCodeAt(i);
      if (point === singleQuote || point === 92 || point < 32 || (point > 126 && point < 160)) {
        result += last === i ? meta[point] : `${str.slice(last, i)}${meta[point]}`;
        last = i + 1;
      } else if (point >= 0xd800 && point <= 0xdfff) {
        if (point <= 0xdbff && i + 1 < str.length) {
          const next = str.charCodeAt(i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
        }
        result += `${str.slice(last, i)}\\u${point.toString(16)}`;
        last = i + 1;
      }
    }
    if (last !== str.length) result += str.slice(last);
    return addQuotes(result, singleQuote);
  }
  function stylizeNoColor(str) { return str; }

  function isInstanceof(object, proto) {
    try { return object instanceof proto; } catch (e) { return false; }
  }

  function getConstructorName(obj, ctx, recurseTimes, protoProps) {
    let firstProto;
    const tmp = obj;
    while (obj) {
      const known = wellKnownPrototypes.get(obj);
      if (known !== undefined && isInstanceof(tmp, known.constructor)) {
        if (protoProps !== undefined && firstProto !== obj) addPrototypeProperties(ctx, tmp, firstProto || tmp, recurseTimes, protoProps);
        return known.name;
      }
      const descriptor = Object.getOwnPropertyDescriptor(obj, "constructor");
      if (descriptor !== undefined && typeof descriptor.value === "function" && descriptor.value.name !== "" &&
          isInstanceof(tmp, descriptor.value)) {
        if (protoProps !== undefined && (firstProto !== obj || !builtInObjects.has(descriptor.value.name))) {
          addPrototypeProperties(ctx, tmp, firstProto || tmp, recurseTimes, protoProps);
        }
        return String(descriptor.value.name);
      }
      obj = Object.getPrototypeOf(obj);
      if (firstProto === undefined) firstProto = obj;
    }
    if (firstProto === null) return null;
    const res = tagOf(tmp);
    if (recurseTimes > ctx.depth && ctx.depth !== null) return `${res} <Complex prototype>`;
    const protoConstr = getConstructorName(firstProto, ctx, recurseTimes + 1, protoProps);
    if (protoConstr === null) {
      return `${res} <${inspect(firstProto, { ...ctx, customInspect: false, depth: -1 })}>`;
    }
    return `${res} <${protoConstr}>`;
  }

  function addPrototypeProperties(ctx, main, obj, recurseTimes, output) {
    let depth = 0;
    let keys;
    let keySet;
    do {
      if (depth !== 0 || main === obj) {
        obj = Object.getPrototypeOf(obj);
        if (obj === null) return;
        const descriptor = Object.getOwnPropertyDescriptor(obj, "constructor");
        if (descriptor !== undefined && typeof descriptor.value === "function" && builtInObjects.has(descriptor.value.name)) return;
      }
      if (depth === 0) keySet = new Set();
      else keys.forEach((key) => keySet.add(key));
      keys = Reflect.ownKeys(obj);
      ctx.seen.push(main);
      for (const key of keys) {
        if (key === "constructor" || hasOwn(main, key) || (depth !== 0 && keySet.has(key))) continue;
        const desc = Object.getOwnPropertyDescriptor(obj, key);
        if (typeof desc.value === "function") continue;
        output.push(formatProperty(ctx, obj, recurseTimes, key, kObjectType, desc, main));
      }
      ctx.seen.pop();
    } while (++depth !== 3);
  }

  function getPrefix(constructor, tag, fallback, size = "") {
    if (constructor === null) {
      if (tag !== "" && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
      return `[${fallback}${size}: null prototype] `;
    }
    if (tag !== "" && constructor !== tag) return `${constructor}${size} [${tag}] `;
    return `${constructor}${size} `;
  }

  function getKeys(value, showHidden) {
    let keys;
    const symbols = Object.getOwnPropertySymbols(value);
    if (showHidden) {
      keys = Object.getOwnPropertyNames(value);
      if (symbols.length !== 0) keys.push(...symbols);
    } else {
      keys = Object.keys(value);
      if (symbols.length !== 0) keys.push(...symbols.filter((key) => _apply(_isEnum, value, [key])));
    }
    return keys;
  }
  // getOwnNonIndexProperties: the keys that are not array indices
  function getNonIndexKeys(value, showHidden) {
    const isIndex = (k) => typeof k === "string" && numberRegExp.test(k) && Number(k) < 2 ** 32 - 1;
    if (!showHidden && Array.isArray(value)) {
      // the usual array: indices 0..length-1 and nothing else (own keys come indices first)
      const names = Object.keys(value);
      const n = value.length;
      if (names.length === n && (n === 0 || names[n - 1] === String(n - 1))) {
        return Object.getOwnPropertySymbols(value).filter((k) => _apply(_isEnum, value, [k]));
      }
    }
    const keys = showHidden ? Reflect.ownKeys(value) : Reflect.ownKeys(value).filter((k) => _apply(_isEnum, value, [k]));
    return keys.filter((k) => !isIndex(k));
  }
  const identifierKeys = new Map(); // key -> whether it prints bare (keyStrRegExp), bounded
  function isIdentifierKey(key) {
    let ok = identifierKeys.get(key);
    if (ok === undefined) {
      ok = keyStrRegExp.exec(key) !== null;
      if (identifierKeys.size < 4096) identifierKeys.set(key, ok);
    }
    return ok;
  }

  function getCtxStyle(value, constructor, tag) {
    let fallback = "";
    if (constructor === null) {
      fallback = tagOf(value);
      if (fallback === tag) fallback = "Object";
    }
    return getPrefix(constructor, tag, fallback);
  }

  function formatValue(ctx, value, recurseTimes, typedArray) {
    if (typeof value !== "object" && typeof value !== "function") return formatPrimitive(ctx.stylize, value, ctx);
    if (value === null) return ctx.stylize("null", "null");
    const context = value;
    if (ctx.customInspect) {
      let maybeCustom;
      try { maybeCustom = value[customInspectSymbol]; } catch (e) { maybeCustom = undefined; }
      if (typeof maybeCustom === "function" && maybeCustom !== inspect &&
          !(value.constructor && value.constructor.prototype === value)) {
        const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
        const ret = _apply(maybeCustom, context, [depth, getUserOptions(ctx), inspect]);
        if (ret !== context) {
          if (typeof ret !== "string") return formatValue(ctx, ret, recurseTimes);
          return ret.replaceAll("\n", `\n${" ".repeat(ctx.indentationLvl)}`);
        }
      }
    }
    if (ctx.seen.includes(value)) {
      let index = 1;
      if (ctx.circular === undefined) {
        ctx.circular = new Map();
        ctx.circular.set(value, index);
      } else {
        index = ctx.circular.get(value);
        if (index === undefined) {
          index = ctx.circular.size + 1;
          ctx.circular.set(value, index);
        }
      }
      return ctx.stylize(`[Circular *${index}]`, "special");
    }
    return formatRaw(ctx, value, recurseTimes, typedArray);
  }

  // Node gives its Buffer, URL and URLSearchParams their own inspect; ours are plain classes.
  function formatOwnClass(ctx, value, recurseTimes) {
    if (BufferClass && value instanceof BufferClass) {
      const max = 50;
      let str = "";
      const n = Math.min(max, value.length);
      for (let i = 0; i < n; i++) str += (i ? " " : "") + (value[i] < 16 ? "0" : "") + value[i].toString(16);
      const remaining = value.length - max;
      if (remaining > 0) str += ` ... ${remaining} more byte${remaining > 1 ? "s" : ""}`;
      const extras = getKeys(value, ctx.showHidden).filter((k) => typeof k !== "string" || !numberRegExp.test(k));
      if (extras.length) {
        const parts = extras.map((k) => formatProperty(ctx, value, recurseTimes + 1, k, kObjectType));
        str += `, ${parts.join(", ")}`;
      }
      return `<${getConstructorName(value, ctx, recurseTimes) || "Buffer"} ${str}>`;
    }
    const depth = ctx.depth === null ? null : ctx.depth - recurseTimes;
    const indent = (text) => text.replaceAll("\n", `\n${" ".repeat(ctx.indentationLvl)}`);
    if (URLClass && value instanceof URLClass) {
      if (typeof depth === "number" && depth < 0) return "[URL]";
      const obj = {
        href: value.href, origin: value.origin, protocol: value.protocol, username: value.username,
        password: value.password, host: value.host, hostname: value.hostname, port: value.port,
        pathname: value.pathname, search: value.search, searchParams: value.searchParams, hash: value.hash,
      };
      return indent(`URL ${inspect(obj, { ...getUserOptions(ctx), depth })}`);
    }
    if (SearchParamsClass && value instanceof SearchParamsClass) {
      if (typeof depth === "number" && depth < 0) return "[Object]";
      const innerOpts = { ...getUserOptions(ctx) };
      if (depth !== null) innerOpts.depth = depth - 1;
      const output = [];
      for (const [k, v] of value) output.push(`${inspect(k, innerOpts)} => ${inspect(v, innerOpts)}`);
      const length = output.reduce((prev, cur) => prev + cur.length + 2, -2);
      if (length > ctx.breakLength) return indent(`URLSearchParams {\n  ${output.join(",\n  ")} }`);
      if (output.length) return indent(`URLSearchParams { ${output.join(", ")} }`);
      return "URLSearchParams {}";
    }
    return null;
  }

  function formatRaw(ctx, value, recurseTimes, typedArray) {
    if (ctx.customInspect) {
      const own = formatOwnClass(ctx, value, recurseTimes);
      if (own !== null) return own;
    }
    let keys;
    let protoProps;
    if (ctx.showHidden && (recurseTimes <= ctx.depth || ctx.depth === null)) protoProps = [];
    const constructor = getConstructorName(value, ctx, recurseTimes, protoProps);
    if (protoProps !== undefined && protoProps.length === 0) protoProps = undefined;
    let tag = value[Symbol.toStringTag];
    if (typeof tag !== "string" || (tag !== "" && (ctx.showHidden ? hasOwn : (o, k) => _apply(_isEnum, o, [k]))(value, Symbol.toStringTag))) tag = "";
    let base = "";
    let formatter = () => [];
    let braces;
    let noIterator = true;
    let i = 0;
    let extrasType = kObjectType;
    if (Symbol.iterator in value || constructor === null) {
      noIterator = false;
      if (Array.isArray(value)) {
        const prefix = constructor !== "Array" || tag !== "" ? getPrefix(constructor, tag, "Array", `(${value.length})`) : "";
        keys = getNonIndexKeys(value, ctx.showHidden);
        braces = [`${prefix}[`, "]"];
        if (value.length === 0 && keys.length === 0 && protoProps === undefined) return `${braces[0]}]`;
        extrasType = kArrayExtrasType;
        formatter = formatArray;
      } else if (isSet(value)) {
        const size = _apply(_setSize, value, []);
        const prefix = getPrefix(constructor, tag, "Set", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = (c, v, r) => formatSet(value, c, v, r);
        if (size === 0 && keys.length === 0 && protoProps === undefined) return `${prefix}{}`;
        braces = [`${prefix}{`, "}"];
      } else if (isMap(value)) {
        const size = _apply(_mapSize, value, []);
        const prefix = getPrefix(constructor, tag, "Map", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = (c, v, r) => formatMap(value, c, v, r);
        if (size === 0 && keys.length === 0 && protoProps === undefined) return `${prefix}{}`;
        braces = [`${prefix}{`, "}"];
      } else if (isTypedArray(value)) {
        keys = getNonIndexKeys(value, ctx.showHidden);
        const fallback = constructor === null ? _apply(_taTag, value, []) : "";
        const size = _apply(_taLength, value, []);
        const prefix = getPrefix(constructor, tag, fallback, `(${size})`);
        braces = [`${prefix}[`, "]"];
        if (size === 0 && keys.length === 0 && !ctx.showHidden) return `${braces[0]}]`;
        formatter = (c, v, r) => formatTypedArray(value, size, c, v, r);
        extrasType = kArrayExtrasType;
      } else if (tagOf(value) === "Map Iterator" || tagOf(value) === "Set Iterator") {
        keys = getKeys(value, ctx.showHidden);
        const type = tagOf(value).slice(0, 3);
        braces = [`[${tag === `${type} Iterator` || tag === "" ? `${type} Iterator` : `${tag}] [${type} Iterator`}] {`, "}"];
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else {
        noIterator = true;
      }
    }
    if (noIterator) {
      keys = getKeys(value, ctx.showHidden);
      braces = ["{", "}"];
      if (typeof value === "function") {
        base = getFunctionBase(value, constructor, tag);
        if (keys.length === 0 && protoProps === undefined) return ctx.stylize(base, "special");
      } else if (constructor === "Object") {
        if (isArguments(value)) braces[0] = "[Arguments] {";
        else if (tag !== "") braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
        if (keys.length === 0 && protoProps === undefined) return `${braces[0]}}`;
      } else if (isRegExp(value)) {
        base = RegExp.prototype.toString.call(constructor !== null ? value : new RegExp(value));
        const prefix = getPrefix(constructor, tag, "RegExp");
        if (prefix !== "RegExp ") base = `${prefix}${base}`;
        if ((keys.length === 0 && protoProps === undefined) || (recurseTimes > ctx.depth && ctx.depth !== null)) return ctx.stylize(base, "regexp");
      } else if (isDate(value)) {
        base = Number.isNaN(_apply(_dateGetTime, value, [])) ? Date.prototype.toString.call(value) : Date.prototype.toISOString.call(value);
        const prefix = getPrefix(constructor, tag, "Date");
        if (prefix !== "Date ") base = `${prefix}${base}`;
        if (keys.length === 0 && protoProps === undefined) return ctx.stylize(base, "date");
      } else if (isError(value)) {
        base = formatError(value, constructor, tag, ctx, keys);
        if (keys.length === 0 && protoProps === undefined) return base;
      } else if (isArrayBuffer(value)) {
        const prefix = getPrefix(constructor, tag, "ArrayBuffer");
        if (typedArray === undefined) formatter = formatArrayBuffer;
        else if (keys.length === 0 && protoProps === undefined) return prefix + `{ byteLength: ${formatNumber(ctx.stylize, value.byteLength, false)} }`;
        braces[0] = `${prefix}{`;
        keys.unshift("byteLength");
      } else if (isDataView(value)) {
        braces[0] = `${getPrefix(constructor, tag, "DataView")}{`;
        keys.unshift("byteLength", "byteOffset", "buffer");
      } else if (isPromise(value)) {
        braces[0] = `${getPrefix(constructor, tag, "Promise")}{`;
        formatter = () => [ctx.stylize("<pending>", "special")];
      } else if (isWeakSet(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakSet")}{`;
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else if (isWeakMap(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakMap")}{`;
        formatter = () => [ctx.stylize("<items unknown>", "special")];
      } else if (boxedType(value) !== null) {
        base = getBoxedBase(value, ctx, keys, constructor, tag);
        if (keys.length === 0 && protoProps === undefined) return base;
      } else {
        if (keys.length === 0 && protoProps === undefined) return `${getCtxStyle(value, constructor, tag)}{}`;
        braces[0] = `${getCtxStyle(value, constructor, tag)}{`;
      }
    }
    if (recurseTimes > ctx.depth && ctx.depth !== null) {
      let constructorName = getCtxStyle(value, constructor, tag).slice(0, -1);
      if (constructor !== null) constructorName = `[${constructorName}]`;
      return ctx.stylize(constructorName, "special");
    }
    recurseTimes += 1;
    ctx.seen.push(value);
    ctx.currentDepth = recurseTimes;
    let output;
    const indentationLvl = ctx.indentationLvl;
    try {
      output = formatter(ctx, value, recurseTimes);
      for (i = 0; i < keys.length; i++) output.push(formatProperty(ctx, value, recurseTimes, keys[i], extrasType));
      if (protoProps !== undefined) output.push(...protoProps);
    } catch (err) {
      if (!(err instanceof RangeError || (err && err.name === "InternalError")) || !/stack|recursion/i.test(String(err.message))) throw err;
      const constructorName = getCtxStyle(value, constructor, tag).slice(0, -1);
      ctx.seen.pop();
      ctx.indentationLvl = indentationLvl;
      return ctx.stylize(`[${constructorName}: Inspection interrupted prematurely. Maximum call stack size exceeded.]`, "special");
    }
    if (ctx.circular !== undefined) {
      const index = ctx.circular.get(value);
      if (index !== undefined) {
        const reference = ctx.stylize(`<ref *${index}>`, "special");
        if (ctx.compact !== true) base = base === "" ? reference : `${reference} ${base}`;
        else braces[0] = `${reference} ${braces[0]}`;
      }
    }
    ctx.seen.pop();
    if (ctx.sorted) {
      const comparator = ctx.sorted === true ? undefined : ctx.sorted;
      if (extrasType === kObjectType) {
        output.sort(comparator);
      } else if (keys.length > 1) {
        const sorted = output.slice(output.length - keys.length).sort(comparator);
        output.splice(output.length - keys.length, keys.length, ...sorted);
      }
    }
    const res = reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
    const budget = ctx.budget[ctx.indentationLvl] || 0;
    const newLength = budget + res.length;
    ctx.budget[ctx.indentationLvl] = newLength;
    if (newLength > 2 ** 27) ctx.depth = -1;
    return res;
  }

  function getBoxedBase(value, ctx, keys, constructor, tag) {
    const type = boxedType(value);
    const fn = boxed.find((b) => b[1] === type)[0];
    if (type === "String") keys.splice(0, _apply(fn, value, []).length);
    let base = `[${type}`;
    if (type !== constructor) base += constructor === null ? " (null prototype)" : ` (${constructor})`;
    base += `: ${formatPrimitive(stylizeNoColor, _apply(fn, value, []), ctx)}]`;
    if (tag !== "" && tag !== constructor) base += ` [${tag}]`;
    return base;
  }

  function getClassBase(value, constructor, tag) {
    const name = (hasOwn(value, "name") && value.name) || "(anonymous)";
    let base = `class ${name}`;
    if (constructor !== "Function" && constructor !== null) base += ` [${constructor}]`;
    if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
    if (constructor !== null) {
      const superName = Object.getPrototypeOf(value).name;
      if (superName) base += ` extends ${superName}`;
    } else {
      base += " extends [null prototype]";
    }
    return `[${base}]`;
  }

  function getFunctionBase(value, constructor, tag) {
    let stringified = "";
    try { stringified = _apply(_fnToString, value, []); } catch (e) { stringified = ""; }
    if (stringified.startsWith("class") && stringified.endsWith("}")) {
      const slice = stringified.slice(5, -1);
      const bracketIndex = slice.indexOf("{");
      if (bracketIndex !== -1 && (!slice.slice(0, bracketIndex).includes("(") ||
          classRegExp.exec(slice.replace(stripCommentsRegExp, "")) !== null)) {
        return getClassBase(value, constructor, tag);
      }
    }
    let type = "Function";
    if (isGeneratorFunction(value)) type = `Generator${type}`;
    if (isAsyncFunction(value)) type = `Async${type}`;
    let base = `[${type}`;
    if (constructor === null) base += " (null prototype)";
    if (value.name === "") base += " (anonymous)";
    else base += `: ${value.name}`;
    base += "]";
    if (constructor !== type && constructor !== null) base += ` ${constructor}`;
    if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
    return base;
  }

  // QuickJS's `stack` is the frames only; V8's starts with `Name: message`. The dispatcher's
  // own frames (below the function's) are not the function's business.
  const DISPATCH_FRAME = /^ {4}at (?:run|start|apply|pump|slice|fireTimer|settleFetch|<eval>) \(<dukpy>:\d+:\d+\)$/;
  function getStackString(error) {
    let stack = error.stack;
    if (!stack) return Error.prototype.toString.call(error);
    stack = String(stack);
    if (stack.startsWith("    at ")) {
      const lines = stack.replace(/\n$/, "").split("\n");
      while (lines.length && DISPATCH_FRAME.test(lines[lines.length - 1])) lines.pop();
      let head;
      try { head = Error.prototype.toString.call(error); } catch (e) { head = "Error"; }
      stack = lines.length ? `${head}\n${lines.join("\n")}` : head;
    }
    return stack;
  }

  function identicalSequenceRange(a, b) {
    for (let i = 0; i < a.length - 3; i++) {
      const pos = b.indexOf(a[i]);
      if (pos !== -1) {
        const rest = b.length - pos;
        if (rest > 3) {
          let len = 1;
          const maxLen = Math.min(a.length - i, rest);
          while (maxLen > len && a[i + len] === b[pos + len]) len++;
          if (len > 3) return { len, offset: i };
        }
      }
    }
    return { len: 0, offset: 0 };
  }

  function getStackFrames(ctx, err, stack) {
    const frames = stack.split("\n");
    let cause;
    try { ({ cause } = err); } catch (e) { /* a throwing getter */ }
    if (cause != null && isError(cause)) {
      const causeStack = getStackString(cause);
      const causeStackStart = causeStack.indexOf("\n    at");
      if (causeStackStart !== -1) {
        const causeFrames = causeStack.slice(causeStackStart + 1).split("\n");
        const { len, offset } = identicalSequenceRange(frames, causeFrames);
        if (len > 0) {
          const skipped = len - 2;
          frames.splice(offset + 1, skipped, ctx.stylize(`    ... ${skipped} lines matching cause stack trace ...`, "undefined"));
        }
      }
    }
    return frames;
  }

  function improveStack(stack, constructor, name, tag) {
    let len = name.length;
    if (constructor === null || (name.endsWith("Error") && stack.startsWith(name) &&
        (stack.length === len || stack[len] === ":" || stack[len] === "\n"))) {
      let fallback = "Error";
      if (constructor === null) {
        const start = /^([A-Z][a-z_ A-Z0-9[\]()-]+)(?::|\n {4}at)/.exec(stack) || /^([a-z_A-Z0-9-]*Error)$/.exec(stack);
        fallback = (start && start[1]) || "";
        len = fallback.length;
        fallback = fallback || "Error";
      }
      const prefix = getPrefix(constructor, tag, fallback).slice(0, -1);
      if (name !== prefix) {
        if (prefix.includes(name)) stack = len === 0 ? `${prefix}: ${stack}` : `${prefix}${stack.slice(len)}`;
        else stack = `${prefix} [${name}]${stack.slice(len)}`;
      }
    }
    return stack;
  }

  function removeDuplicateErrorKeys(ctx, keys, err, stack) {
    if (!ctx.showHidden && keys.length !== 0) {
      for (const name of ["name", "message", "stack"]) {
        const index = keys.indexOf(name);
        if (index !== -1 && stack.includes(err[name])) keys.splice(index, 1);
      }
    }
  }

  function formatError(err, constructor, tag, ctx, keys) {
    const name = err.name != null ? String(err.name) : "Error";
    let stack = getStackString(err);
    removeDuplicateErrorKeys(ctx, keys, err, stack);
    if ("cause" in err && (keys.length === 0 || !keys.includes("cause"))) keys.push("cause");
    if (Array.isArray(err.errors) && (keys.length === 0 || !keys.includes("errors"))) keys.push("errors");
    stack = improveStack(stack, constructor, name, tag);
    let pos = (err.message && stack.indexOf(err.message)) || -1;
    if (pos !== -1) pos += err.message.length;
    const stackStart = stack.indexOf("\n    at", pos);
    if (stackStart === -1) {
      stack = `[${stack}]`;
    } else {
      const lines = getStackFrames(ctx, err, stack.slice(stackStart + 1));
      stack = `${stack.slice(0, stackStart)}\n${lines.join("\n")}`;
    }
    if (ctx.indentationLvl !== 0) stack = stack.replaceAll("\n", `\n${" ".repeat(ctx.indentationLvl)}`);
    return stack;
  }

  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let i = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) outputLength--;
    const separatorSpace = 2;
    const dataLen = new Array(outputLength);
    for (; i < outputLength; i++) {
      const len = getStringWidth(output[i], ctx.colors);
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength && (totalLength / actualMax > 5 || maxLength <= 6)) {
      const approxCharHeights = 2.5;
      const averageBias = Math.sqrt(actualMax - totalLength / output.length);
      const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
      const columns = Math.min(
        Math.round(Math.sqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
        Math.floor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) return output;
      const tmp = [];
      const maxLineLength = [];
      for (let i = 0; i < columns; i++) {
        let lineMaxLength = 0;
        for (let j = i; j < output.length; j += columns) if (dataLen[j] > lineMaxLength) lineMaxLength = dataLen[j];
        maxLineLength[i] = lineMaxLength + separatorSpace;
      }
      let padStart = true;
      if (value !== undefined) {
        for (let i = 0; i < output.length; i++) {
          if (typeof value[i] !== "number" && typeof value[i] !== "bigint") { padStart = false; break; }
        }
      }
      for (let i = 0; i < outputLength; i += columns) {
        const max = Math.min(i + columns, outputLength);
        let str = "";
        let j = i;
        for (; j < max - 1; j++) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j];
          str += padStart ? `${output[j]}, `.padStart(padding, " ") : `${output[j]}, `.padEnd(padding, " ");
        }
        if (padStart) {
          const padding = maxLineLength[j - i] + output[j].length - dataLen[j] - separatorSpace;
          str += output[j].padStart(padding, " ");
        } else {
          str += output[j];
        }
        tmp.push(str);
      }
      if (ctx.maxArrayLength < output.length) tmp.push(output[outputLength]);
      output = tmp;
    }
    return output;
  }

  const remainingText = (remaining) => `... ${remaining} more item${remaining > 1 ? "s" : ""}`;

  function addNumericSeparator(integerString) {
    let result = "";
    let i = integerString.length;
    const start = integerString.startsWith("-") ? 1 : 0;
    for (; i >= start + 4; i -= 3) result = `_${integerString.slice(i - 3, i)}${result}`;
    return i === integerString.length ? integerString : `${integerString.slice(0, i)}${result}`;
  }
  function addNumericSeparatorEnd(integerString) {
    let result = "";
    let i = 0;
    for (; i < integerString.length - 3; i += 3) result += `${integerString.slice(i, i + 3)}_`;
    return i === 0 ? integerString : `${result}${integerString.slice(i)}`;
  }
  function formatNumber(fn, number, numericSeparator) {
    if (!numericSeparator) {
      if (Object.is(number, -0)) return fn("-0", "number");
      return fn(`${number}`, "number");
    }
    const numberString = String(number);
    const integer = Math.trunc(number);
    if (integer === number) {
      if (!Number.isFinite(number) || numberString.includes("e")) return fn(numberString, "number");
      return fn(addNumericSeparator(numberString), "number");
    }
    if (Number.isNaN(number)) return fn(numberString, "number");
    const decimalIndex = numberString.indexOf(".");
    return fn(`${addNumericSeparator(numberString.slice(0, decimalIndex))}.${addNumericSeparatorEnd(numberString.slice(decimalIndex + 1))}`, "number");
  }
  function formatBigInt(fn, bigint, numericSeparator) {
    const string = String(bigint);
    return fn(numericSeparator ? `${addNumericSeparator(string)}n` : `${string}n`, "bigint");
  }

  function formatPrimitive(fn, value, ctx) {
    if (typeof value === "string") {
      let trailer = "";
      if (value.length > ctx.maxStringLength) {
        const remaining = value.length - ctx.maxStringLength;
        value = value.slice(0, ctx.maxStringLength);
        trailer = `... ${remaining} more character${remaining > 1 ? "s" : ""}`;
      }
      if (ctx.compact !== true && value.length > kMinLineLength && value.length > ctx.breakLength - ctx.indentationLvl - 4) {
        return value.split(/(?<=\n)/).map((line) => fn(strEscape(line), "string"))
          .join(` +\n${" ".repeat(ctx.indentationLvl + 2)}`) + trailer;
      }
      return fn(strEscape(value), "string") + trailer;
    }
    if (typeof value === "number") return formatNumber(fn, value, ctx.numericSeparator);
    if (typeof value === "bigint") return formatBigInt(fn, value, ctx.numericSeparator);
    if (typeof value === "boolean") return fn(`${value}`, "boolean");
    if (typeof value === "undefined") return fn("undefined", "undefined");
    return fn(Symbol.prototype.toString.call(value), "symbol");
  }

  function formatSpecialArray(ctx, value, recurseTimes, maxLength, output, i) {
    const keys = Object.keys(value);
    let index = i;
    for (; i < keys.length && output.length < maxLength; i++) {
      const key = keys[i];
      const tmp = +key;
      if (tmp > 2 ** 32 - 2) break;
      if (`${index}` !== key) {
        if (numberRegExp.exec(key) === null) break;
        const emptyItems = tmp - index;
        output.push(ctx.stylize(`<${emptyItems} empty item${emptyItems > 1 ? "s" : ""}>`, "undefined"));
        index = tmp;
        if (output.length === maxLength) break;
      }
      output.push(formatProperty(ctx, value, recurseTimes, key, kArrayType));
      index++;
    }
    const remaining = value.length - index;
    if (output.length !== maxLength) {
      if (remaining > 0) output.push(ctx.stylize(`<${remaining} empty item${remaining > 1 ? "s" : ""}>`, "undefined"));
    } else if (remaining > 0) {
      output.push(remainingText(remaining));
    }
    return output;
  }

  function formatArrayBuffer(ctx, value) {
    let buffer;
    try { buffer = new Uint8Array(value); } catch (e) { return [ctx.stylize("(detached)", "special")]; }
    let hex = "";
    const n = Math.min(ctx.maxArrayLength, buffer.length);
    for (let i = 0; i < n; i++) hex += (buffer[i] < 16 ? "0" : "") + buffer[i].toString(16);
    let str = hex.replace(/(.{2})/g, "$1 ").trim();
    const remaining = buffer.length - ctx.maxArrayLength;
    if (remaining > 0) str += ` ... ${remaining} more byte${remaining > 1 ? "s" : ""}`;
    return [`${ctx.stylize("[Uint8Contents]", "special")}: <${str}>`];
  }

  function formatArray(ctx, value, recurseTimes) {
    const valLen = value.length;
    const len = Math.min(Math.max(0, ctx.maxArrayLength), valLen);
    const remaining = valLen - len;
    const output = [];
    for (let i = 0; i < len; i++) {
      if (!hasOwn(value, i)) return formatSpecialArray(ctx, value, recurseTimes, len, output, i);
      output.push(formatProperty(ctx, value, recurseTimes, i, kArrayType));
    }
    if (remaining > 0) output.push(remainingText(remaining));
    return output;
  }

  function formatTypedArray(value, length, ctx, ignored, recurseTimes) {
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = new Array(maxLength);
    const elementFormatter = length > 0 && typeof value[0] === "number" ? formatNumber : formatBigInt;
    for (let i = 0; i < maxLength; ++i) output[i] = elementFormatter(ctx.stylize, value[i], ctx.numericSeparator);
    if (remaining > 0) output[maxLength] = remainingText(remaining);
    if (ctx.showHidden) {
      ctx.indentationLvl += 2;
      for (const key of ["BYTES_PER_ELEMENT", "length", "byteLength", "byteOffset", "buffer"]) {
        output.push(`[${key}]: ${formatValue(ctx, value[key], recurseTimes, true)}`);
      }
      ctx.indentationLvl -= 2;
    }
    return output;
  }

  function formatSet(value, ctx, ignored, recurseTimes) {
    const length = _apply(_setSize, value, []);
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const v of Set.prototype.values.call(value)) {
      if (i >= maxLength) break;
      output.push(formatValue(ctx, v, recurseTimes));
      i++;
    }
    if (remaining > 0) output.push(remainingText(remaining));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatMap(value, ctx, ignored, recurseTimes) {
    const length = _apply(_mapSize, value, []);
    const maxLength = Math.min(Math.max(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    for (const { 0: k, 1: v } of Map.prototype.entries.call(value)) {
      if (i >= maxLength) break;
      output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
      i++;
    }
    if (remaining > 0) output.push(remainingText(remaining));
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatProperty(ctx, value, recurseTimes, key, type, desc, original = value) {
    let name, str;
    let extra = " ";
    desc = desc || Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
    if (desc.value !== undefined) {
      const diff = ctx.compact !== true || type !== kObjectType ? 2 : 3;
      ctx.indentationLvl += diff;
      str = formatValue(ctx, desc.value, recurseTimes);
      if (diff === 3 && ctx.breakLength < getStringWidth(str, ctx.colors)) extra = `\n${" ".repeat(ctx.indentationLvl)}`;
      ctx.indentationLvl -= diff;
    } else if (desc.get !== undefined) {
      const label = desc.set !== undefined ? "Getter/Setter" : "Getter";
      const s = ctx.stylize;
      const sp = "special";
      if (ctx.getters && (ctx.getters === true || (ctx.getters === "get" && desc.set === undefined) ||
          (ctx.getters === "set" && desc.set !== undefined))) {
        try {
          const tmp = _apply(desc.get, original, []);
          ctx.indentationLvl += 2;
          if (tmp === null) str = `${s(`[${label}:`, sp)} ${s("null", "null")}${s("]", sp)}`;
          else if (typeof tmp === "object") str = `${s(`[${label}]`, sp)} ${formatValue(ctx, tmp, recurseTimes)}`;
          else str = `${s(`[${label}:`, sp)} ${formatPrimitive(s, tmp, ctx)}${s("]", sp)}`;
          ctx.indentationLvl -= 2;
        } catch (err) {
          str = `${s(`[${label}:`, sp)} <Inspection threw (${err && err.message})>${s("]", sp)}`;
        }
      } else {
        str = ctx.stylize(`[${label}]`, sp);
      }
    } else if (desc.set !== undefined) {
      str = ctx.stylize("[Setter]", "special");
    } else {
      str = ctx.stylize("undefined", "undefined");
    }
    if (type === kArrayType) return str;
    if (typeof key === "symbol") {
      name = `[${ctx.stylize(Symbol.prototype.toString.call(key).replace(strEscapeSequencesReplacer, escapeFn), "symbol")}]`;
    } else if (key === "__proto__") {
      name = "['__proto__']";
    } else if (desc.enumerable === false) {
      name = `[${String(key).replace(strEscapeSequencesReplacer, escapeFn)}]`;
    } else if (isIdentifierKey(key)) {
      name = ctx.stylize(key, "name");
    } else {
      name = ctx.stylize(strEscape(String(key)), "string");
    }
    return `${name}:${extra}${str}`;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (let i = 0; i < output.length; i++) {
      totalLength += output[i].length;
      if (totalLength > ctx.breakLength) return false;
    }
    return base === "" || !base.includes("\n");
  }

  function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
    if (ctx.compact !== true) {
      if (typeof ctx.compact === "number" && ctx.compact >= 1) {
        const entries = output.length;
        if (extrasType === kArrayExtrasType && entries > 6) output = groupArrayElements(ctx, output, value);
        if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
          const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
          if (isBelowBreakLength(ctx, output, start, base)) {
            const joinedOutput = join(output, ", ");
            if (!joinedOutput.includes("\n")) return `${base ? `${base} ` : ""}${braces[0]} ${joinedOutput}` + ` ${braces[1]}`;
          }
        }
      }
      const indentation = `\n${" ".repeat(ctx.indentationLvl)}`;
      return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ${join(output, `,${indentation}  `)}${indentation}${braces[1]}`;
    }
    if (isBelowBreakLength(ctx, output, 0, base)) return `${braces[0]}${base ? ` ${base}` : ""} ${join(output, ", ")} ` + braces[1];
    const indentation = " ".repeat(ctx.indentationLvl);
    const ln = base === "" && braces[0].length === 1 ? " " : `${base ? ` ${base}` : ""}\n${indentation}  `;
    return `${braces[0]}${ln}${join(output, `,\n${indentation}  `)} ${braces[1]}`;
  }

  function hasBuiltInToString(value) {
    let hasOwnToString = hasOwn;
    let hasOwnToPrimitive = hasOwn;
    const no = () => false;
    if (typeof value.toString !== "function") {
      if (typeof value[Symbol.toPrimitive] !== "function") return true;
      else if (hasOwn(value, Symbol.toPrimitive)) return false;
      hasOwnToString = no;
    } else if (hasOwn(value, "toString")) {
      return false;
    } else if (typeof value[Symbol.toPrimitive] !== "function") {
      hasOwnToPrimitive = no;
    } else if (hasOwn(value, Symbol.toPrimitive)) {
      return false;
    }
    let pointer = value;
    do {
      pointer = Object.getPrototypeOf(pointer);
    } while (!hasOwnToString(pointer, "toString") && !hasOwnToPrimitive(pointer, Symbol.toPrimitive));
    const descriptor = Object.getOwnPropertyDescriptor(pointer, "constructor");
    return descriptor !== undefined && typeof descriptor.value === "function" && builtInObjects.has(descriptor.value.name);
  }

  function tryStringify(arg) {
    try {
      return JSON.stringify(arg);
    } catch (err) {
      // V8's message is "Converting circular structure to JSON..."; QuickJS says "circular reference"
      if (err instanceof TypeError && /circular/i.test(String(err.message))) return "[Circular]";
      throw err;
    }
  }

  const formatNumberNoColor = (number, options) =>
    formatNumber(stylizeNoColor, number, (options && options.numericSeparator) ?? inspectDefaultOptions.numericSeparator);
  const formatBigIntNoColor = (bigint, options) =>
    formatBigInt(stylizeNoColor, bigint, (options && options.numericSeparator) ?? inspectDefaultOptions.numericSeparator);

  function formatWithOptions(inspectOptions, args) {
    const first = args[0];
    let a = 0;
    let str = "";
    let joinStr = "";
    if (typeof first === "string") {
      if (args.length === 1) return first;
      let tempStr;
      let lastPos = 0;
      for (let i = 0; i < first.length - 1; i++) {
        if (first.charCodeAt(i) === 37) { // '%'
          const nextChar = first.charCodeAt(++i);
          if (a + 1 !== args.length) {
            switch (nextChar) {
              case 115: { // 's'
                const tempArg = args[++a];
                if (typeof tempArg === "number") tempStr = formatNumberNoColor(tempArg, inspectOptions);
                else if (typeof tempArg === "bigint") tempStr = formatBigIntNoColor(tempArg, inspectOptions);
                else if (typeof tempArg !== "object" || tempArg === null || !hasBuiltInToString(tempArg)) tempStr = String(tempArg);
                else tempStr = inspect(tempArg, { ...inspectOptions, compact: 3, colors: false, depth: 0 });
                break;
              }
              case 106: // 'j'
                tempStr = tryStringify(args[++a]);
                break;
              case 100: { // 'd'
                const tempNum = args[++a];
                if (typeof tempNum === "bigint") tempStr = formatBigIntNoColor(tempNum, inspectOptions);
                else if (typeof tempNum === "symbol") tempStr = "NaN";
                else tempStr = formatNumberNoColor(Number(tempNum), inspectOptions);
                break;
              }
              case 79: // 'O'
                tempStr = inspect(args[++a], inspectOptions);
                break;
              case 111: // 'o'
                tempStr = inspect(args[++a], { ...inspectOptions, showHidden: true, showProxy: true, depth: 4 });
                break;
              case 105: { // 'i'
                const tempInteger = args[++a];
                if (typeof tempInteger === "bigint") tempStr = formatBigIntNoColor(tempInteger, inspectOptions);
                else if (typeof tempInteger === "symbol") tempStr = "NaN";
                else tempStr = formatNumberNoColor(Number.parseInt(tempInteger), inspectOptions);
                break;
              }
              case 102: { // 'f'
                const tempFloat = args[++a];
                if (typeof tempFloat === "symbol") tempStr = "NaN";
                else tempStr = formatNumberNoColor(Number.parseFloat(tempFloat), inspectOptions);
                break;
              }
              case 99: // 'c'
                a += 1;
                tempStr = "";
                break;
              case 37: // '%'
                str += first.slice(lastPos, i);
                lastPos = i + 1;
                continue;
              default:
                continue;
            }
            if (lastPos !== i - 1) str += first.slice(lastPos, i - 1);
            str += tempStr;
            lastPos = i + 1;
          } else if (nextChar === 37) {
            str += first.slice(lastPos, i);
            lastPos = i + 1;
          }
        }
      }
      if (lastPos !== 0) {
        a++;
        joinStr = " ";
        if (lastPos < first.length) str += first.slice(lastPos);
      }
    }
    while (a < args.length) {
      const value = args[a];
      str += joinStr;
      str += typeof value !== "string" ? inspect(value, inspectOptions) : value;
      joinStr = " ";
      a++;
    }
    return str;
  }

  // ---- console.table (lib/internal/cli_table.js and Console#table) ----------------------
  const tableChars = {
    middleMiddle: "─", rowMiddle: "┼", topRight: "┐", topLeft: "┌", leftMiddle: "├", topMiddle: "┬",
    bottomRight: "┘", bottomLeft: "└", bottomMiddle: "┴", rightMiddle: "┤", left: "│ ", right: " │", middle: " │ ",
  };
  function renderRow(row, columnWidths) {
    let out = tableChars.left;
    for (let i = 0; i < row.length; i++) {
      const cell = row[i];
      const needed = columnWidths[i] - getStringWidth(cell);
      out += cell + " ".repeat(Math.ceil(needed));
      if (i !== row.length - 1) out += tableChars.middle;
    }
    return out + tableChars.right;
  }
  function cliTable(head, columns) {
    const rows = [];
    const columnWidths = head.map((h) => getStringWidth(h));
    const longestColumn = Math.max(...columns.map((a) => a.length));
    for (let i = 0; i < head.length; i++) {
      const column = columns[i];
      for (let j = 0; j < longestColumn; j++) {
        if (rows[j] === undefined) rows[j] = [];
        const value = rows[j][i] = hasOwn(column, j) ? column[j] : "";
        columnWidths[i] = Math.max(columnWidths[i] || 0, getStringWidth(value));
      }
    }
    const divider = columnWidths.map((i) => tableChars.middleMiddle.repeat(i + 2));
    let result = tableChars.topLeft + divider.join(tableChars.topMiddle) + tableChars.topRight + "\n" +
      renderRow(head, columnWidths) + "\n" + tableChars.leftMiddle + divider.join(tableChars.rowMiddle) +
      tableChars.rightMiddle + "\n";
    for (const row of rows) result += `${renderRow(row, columnWidths)}\n`;
    return result + tableChars.bottomLeft + divider.join(tableChars.bottomMiddle) + tableChars.bottomRight;
  }

  /** console.table's text, or null when Node would log the value as console.log does. */
  function table(tabularData, properties) {
    if (properties !== undefined && !Array.isArray(properties)) {
      const err = new TypeError(`The "properties" argument must be an instance of Array. Received ${typeDescription(properties)}`);
      err.code = "ERR_INVALID_ARG_TYPE";
      throw err;
    }
    if (tabularData === null || typeof tabularData !== "object") return null;
    const isArrayLike = (v) => Array.isArray(v) || isTypedArray(v);
    const _inspect = (v) => {
      const depth = v !== null && typeof v === "object" && !isArrayLike(v) && Object.keys(v).length > 2 ? -1 : 0;
      return inspect(v, { depth, maxArrayLength: 3, breakLength: Infinity });
    };
    const getIndexArray = (length) => Array.from({ length }, (_, i) => _inspect(i));
    if (isMap(tabularData)) {
      const keys = [];
      const values = [];
      let length = 0;
      for (const { 0: k, 1: v } of Map.prototype.entries.call(tabularData)) {
        keys.push(_inspect(k));
        values.push(_inspect(v));
        length++;
      }
      return cliTable(["(iteration index)", "Key", "Values"], [getIndexArray(length), keys, values]);
    }
    if (isSet(tabularData)) {
      const values = [];
      let length = 0;
      for (const v of Set.prototype.values.call(tabularData)) { values.push(_inspect(v)); length++; }
      return cliTable(["(iteration index)", "Values"], [getIndexArray(length), values]);
    }
    const map = Object.create(null);
    let hasPrimitives = false;
    const valuesKeyArray = [];
    const indexKeyArray = Object.keys(tabularData);
    for (let i = 0; i < indexKeyArray.length; i++) {
      const item = tabularData[indexKeyArray[i]];
      const primitive = item === null || (typeof item !== "function" && typeof item !== "object");
      if (properties === undefined && primitive) {
        hasPrimitives = true;
        valuesKeyArray[i] = _inspect(item);
      } else {
        const keys = properties || Object.keys(item);
        for (const key of keys) {
          map[key] ??= [];
          if ((primitive && properties) || !hasOwn(item, key)) map[key][i] = "";
          else map[key][i] = _inspect(item[key]);
        }
      }
    }
    const keys = Object.keys(map);
    const values = Object.values(map);
    if (hasPrimitives) {
      keys.push("Values");
      values.push(valuesKeyArray);
    }
    keys.unshift("(index)");
    values.unshift(indexKeyArray);
    return cliTable(keys, values);
  }

  function typeDescription(v) {
    if (v == null) return ` ${v}`;
    if (typeof v === "function") return `function ${v.name}`;
    if (typeof v === "object") {
      if (v.constructor && v.constructor.name) return `an instance of ${v.constructor.name}`;
      return inspect(v, { depth: -1 });
    }
    let shown = inspect(v, { colors: false });
    if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
    return `type ${typeof v} (${shown})`;
  }

  return Object.freeze({ inspect, formatWithOptions, table, typeDescription });
});
