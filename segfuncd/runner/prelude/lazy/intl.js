// Intl.DateTimeFormat and Intl.NumberFormat as Node 20's, for Date#toLocale(Date|Time)String and
// Number#toLocaleString too: options are checked and patterns made on the host (runner/builtins/
// intl_*.py: Babel's CLDR data, zoneinfo), so only plain values cross the bridge. Loaded on first
// use of `Intl` or a toLocale* method (30_builtins.js); options the host cannot honour throw a
// RangeError that says so. Collator, PluralRules and the other Intl classes are not provided.
(function (deps) {
  const { hostx } = deps;

  /** Locales as the host reads them: a string, a list of strings, or null for the default. */
  function locs(locales) {
    if (locales === undefined) return null;
    if (typeof locales === "string") return locales;
    if (locales === null) throw new TypeError("Cannot convert undefined or null to object");
    return Array.from(locales, (l) => (typeof l === "string" ? l : l && typeof l.toString === "function" && typeof l !== "number" ? String(l) : l));
  }
  /** Options as plain JSON: own and inherited enumerable values, primitives read as ECMA-402 does. */
  function opts(options) {
    if (options === undefined) return null;
    if (options === null) throw new TypeError("Cannot convert undefined or null to object");
    const out = {};
    for (const k in options) {
      const v = options[k];
      if (v === undefined) continue;
      out[k] = typeof v === "boolean" || typeof v === "number" ? v : String(v);
    }
    return out;
  }
  function timeValue(date) {
    if (date === undefined) return Date.now();
    const n = typeof date === "number" ? date : Number(date instanceof Date ? date.getTime() : date);
    if (!Number.isFinite(n) || Math.abs(n) > 8.64e15) throw new RangeError("Invalid time value");
    return Math.trunc(n) + 0;
  }
  function decimalText(value) {
    if (typeof value === "bigint") return value.toString();
    const n = Number(value); // Node 20 reads a string as a Number too
    return Object.is(n, -0) ? "-0" : String(n);
  }

  class DateTimeFormat {
    constructor(locales, options) {
      const l = locs(locales), o = opts(options);
      const resolved = hostx("intl_dtf", l, o, "any", "date");
      Object.defineProperty(this, "_spec", { value: { l, o, resolved } });
      const self = this;
      Object.defineProperty(this, "format", { value: function format(date) { return self._format(date, false); }, configurable: true, writable: true });
    }
    _format(date, parts) {
      const s = this._spec;
      return hostx("intl_dtf_format", s.l, s.o, "any", "date", timeValue(date), parts);
    }
    formatToParts(date) { return this._format(date, true); }
    resolvedOptions() { return Object.assign({}, this._spec.resolved); }
    formatRange() { throw new RangeError("Intl.DateTimeFormat#formatRange is not supported here"); }
    formatRangeToParts() { throw new RangeError("Intl.DateTimeFormat#formatRangeToParts is not supported here"); }
    static supportedLocalesOf(locales) { return hostx("intl_supported", locs(locales)); }
    get [Symbol.toStringTag]() { return "Intl.DateTimeFormat"; }
  }

  class NumberFormat {
    constructor(locales, options) {
      const l = locs(locales), o = opts(options);
      const resolved = hostx("intl_nf", l, o);
      Object.defineProperty(this, "_spec", { value: { l, o, resolved } });
      const self = this;
      Object.defineProperty(this, "format", { value: function format(value) { return self._format(value, false); }, configurable: true, writable: true });
    }
    _format(value, parts) { return hostx("intl_nf_format", this._spec.l, this._spec.o, decimalText(value), parts); }
    formatToParts(value) { return this._format(value, true); }
    resolvedOptions() { return Object.assign({}, this._spec.resolved); }
    formatRange() { throw new RangeError("Intl.NumberFormat#formatRange is not supported here"); }
    static supportedLocalesOf(locales) { return hostx("intl_supported", locs(locales)); }
    get [Symbol.toStringTag]() { return "Intl.NumberFormat"; }
  }

  const Intl = {};
  Object.defineProperties(Intl, {
    DateTimeFormat: { value: DateTimeFormat, writable: true, configurable: true },
    NumberFormat: { value: NumberFormat, writable: true, configurable: true },
    getCanonicalLocales: { value: function getCanonicalLocales(locales) { return hostx("intl_locales", locs(locales)); }, writable: true, configurable: true },
    [Symbol.toStringTag]: { value: "Intl", configurable: true },
  });

  const KINDS = { any: ["any", "all"], date: ["date", "date"], time: ["time", "time"] };
  return {
    Intl,
    /** Date#toLocaleString ("any"), #toLocaleDateString ("date"), #toLocaleTimeString ("time"). */
    dateToLocale(kind, ms, locales, options) {
      const [required, defaults] = KINDS[kind];
      return hostx("intl_dtf_format", locs(locales), opts(options), required, defaults, ms, false);
    },
    numberToLocale(value, locales, options) {
      return hostx("intl_nf_format", locs(locales), opts(options), decimalText(value), false);
    },
  };
})
