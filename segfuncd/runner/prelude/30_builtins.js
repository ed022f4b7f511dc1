// segfuncd prelude, part 3: the door to the host-backed built-ins (crypto, jsonwebtoken, AWS,
// FormData, Intl).
//
// Their JavaScript lives in prelude/lazy/<name>.js and is fetched from the host and evaluated
// the first time a function touches the global (90_globals.js), as lodash is: a context that
// never uses them carries none of their objects (QuickJS walks the heap on every eval).
// Each lazy file is one function expression `(function (deps) {...})`; `deps` hands it the
// closure-only helpers below, so `hostx` (which carries the token) never reaches user code.

const __indirectEval = eval; // captured now: user code may replace globalThis.eval later
const __errorClasses = { Error, TypeError, RangeError, SyntaxError };

/** A host-backed built-in call (runner/builtins): its value, or a thrown JS error of Node's name. */
function hostx(name, ...args) {
  const r = host("x", name, ...args);
  if (r === null || typeof r !== "object") throw new Error(`internal error in host call ${name}`);
  if (r.e) throw hostError(r.e);
  return r.v;
}

function hostError(e) {
  const Cls = __errorClasses[e.name] || Error;
  const err = new Cls(String(e.message));
  if (!__errorClasses[e.name]) Object.defineProperty(err, "name", { value: String(e.name), writable: true, configurable: true });
  if (e.code !== null && e.code !== undefined) err.code = e.code;
  return err;
}

const __loadedBuiltins = new Map();
function loadBuiltin(name) {
  if (!__loadedBuiltins.has(name)) {
    const factory = __indirectEval(hostx("source", name));
    __loadedBuiltins.set(name, factory({
      hostx, Buffer, latin1FromBytes: __latin1FromBytes, bytesFromLatin1, utf8Decode,
      fetch, setTimeout, defineError, loadBuiltin,
    }));
  }
  return __loadedBuiltins.get(name);
}

// Date#toLocale*String and Number#toLocaleString as Node's (locale, timeZone, currency...):
// QuickJS's own ignore both arguments. The Intl built-in is loaded on the first call.
(() => {
  const define = (proto, name, fn) => Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true, enumerable: false });
  const getTime = Date.prototype.getTime;
  for (const [name, kind] of [["toLocaleString", "any"], ["toLocaleDateString", "date"], ["toLocaleTimeString", "time"]]) {
    define(Date.prototype, name, {
      [name](locales, options) {
        const ms = getTime.call(this);
        if (ms !== ms) return "Invalid Date";
        return loadBuiltin("intl").dateToLocale(kind, ms, locales, options);
      },
    }[name]);
  }
  const numberValue = Number.prototype.valueOf;
  define(Number.prototype, "toLocaleString", function toLocaleString(locales, options) {
    return loadBuiltin("intl").numberToLocale(numberValue.call(this), locales, options);
  });
  if (typeof BigInt === "function") {
    const bigintValue = BigInt.prototype.valueOf;
    define(BigInt.prototype, "toLocaleString", function toLocaleString(locales, options) {
      return loadBuiltin("intl").numberToLocale(bigintValue.call(this), locales, options);
    });
  }
})();
