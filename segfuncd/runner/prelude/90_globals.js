// segfuncd prelude, last part: publish the documented globals (README, "Writing functions").
// Ordinary writable properties, as in Node: a function may shadow one for itself.
for (const [name, value] of Object.entries({
  fetch, Request, Response, Headers, URL, URLSearchParams, atob, btoa, console,
  Buffer, setTimeout, clearTimeout, cache, FetchError,
  EventNotSupported, InvalidEventPayload, ValidationError, RetryError,
})) {
  Object.defineProperty(globalThis, name, { value: value, writable: true, configurable: true, enumerable: false });
}

// crypto, jsonwebtoken, AWS and FormData are evaluated the first time a function touches them
// (30_builtins.js); assigning one shadows it, as for any global.
for (const [name, file] of [["crypto", "crypto"], ["jsonwebtoken", "jsonwebtoken"], ["AWS", "aws"], ["FormData", "formdata"]]) {
  const settle = (v) => Object.defineProperty(globalThis, name, { value: v, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(globalThis, name, {
    configurable: true,
    enumerable: false,
    get() { const v = loadBuiltin(file); settle(v); return v; },
    set(v) { settle(v); },
  });
}

// Intl too (lazy/intl.js; the toLocale* methods load it as well, see 30_builtins.js).
Object.defineProperty(globalThis, "Intl", {
  configurable: true,
  enumerable: false,
  get() { const v = loadBuiltin("intl").Intl; Object.defineProperty(globalThis, "Intl", { value: v, writable: true, configurable: true, enumerable: false }); return v; },
  set(v) { Object.defineProperty(globalThis, "Intl", { value: v, writable: true, configurable: true, enumerable: false }); },
});

// lodash is big: QuickJS walks the whole heap on every eval (measured: +0.65 ms per slice
// with lodash loaded), so it is evaluated the first time a function touches `_`.
let __lodashSource = __boot.lodash;
Object.defineProperty(globalThis, "_", {
  configurable: true,
  enumerable: false,
  get() {
    const src = __lodashSource;
    __lodashSource = null;
    if (src) (0, eval)(src); // lodash's UMD footer assigns globalThis._, hitting set() below
    return Object.getOwnPropertyDescriptor(globalThis, "_").get ? undefined : globalThis._;
  },
  set(v) {
    Object.defineProperty(globalThis, "_", { value: v, writable: true, configurable: true, enumerable: false });
  },
});
