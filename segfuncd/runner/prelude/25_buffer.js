// segfuncd prelude: Buffer's number reads and writes, concat, compare, equals, slice/subarray.
//
// As Node v20's lib/buffer.js and lib/internal/buffer.js (MIT, Copyright Node.js contributors):
// same results, same RangeError / TypeError messages and `code`s. The ~70 read/write methods
// (lazy/buffer_io.js) load the first time one is touched, so a context that never reads an
// integer out of a Buffer carries none of them.

function nodeError(Cls, code, message) {
  const err = new Cls(message);
  err.code = code;
  return err;
}
function addNumericalSeparator(val) {
  let res = "";
  let i = val.length;
  const start = val[0] === "-" ? 1 : 0;
  for (; i >= start + 4; i -= 3) res = `_${val.slice(i - 3, i)}${res}`;
  return `${val.slice(0, i)}${res}`;
}
function determineSpecificType(value) {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  switch (typeof value) {
    case "bigint": return `type bigint (${value}n)`;
    case "number":
      if (value === 0) return 1 / value === -Infinity ? "type number (-0)" : "type number (0)";
      return `type number (${value})`;
    case "boolean": return `type boolean (${value})`;
    case "symbol": return `type symbol (${String(value)})`;
    case "function": return `function ${value.name}`;
    case "object":
      if (value.constructor && "name" in value.constructor) return `an instance of ${value.constructor.name}`;
      return `${inspectMod().inspect(value, { depth: -1 })}`;
    case "string":
      if (value.length > 28) value = `${value.slice(0, 25)}...`;
      if (value.indexOf("'") === -1) return `type string ('${value}')`;
      return `type string (${JSON.stringify(value)})`;
  }
  return String(value);
}
function ERR_OUT_OF_RANGE(str, range, input) {
  let received;
  if (Number.isInteger(input) && Math.abs(input) > 2 ** 32) {
    received = addNumericalSeparator(String(input));
  } else if (typeof input === "bigint") {
    received = String(input);
    if (input > 2n ** 32n || input < -(2n ** 32n)) received = addNumericalSeparator(received);
    received += "n";
  } else {
    received = inspectMod().inspect(input);
  }
  return nodeError(RangeError, "ERR_OUT_OF_RANGE", `The value of "${str}" is out of range. It must be ${range}. Received ${received}`);
}
function ERR_INVALID_ARG_TYPE(name, expected, actual) {
  return nodeError(TypeError, "ERR_INVALID_ARG_TYPE", `The "${name}" argument must be ${expected}. Received ${determineSpecificType(actual)}`);
}
function ERR_BUFFER_OUT_OF_BOUNDS(name = undefined) {
  return nodeError(RangeError, "ERR_BUFFER_OUT_OF_BOUNDS", name ? `"${name}" is outside of buffer bounds` : "Attempt to access memory outside buffer bounds");
}
function validateNumber(value, name, min = undefined, max) {
  if (typeof value !== "number") throw ERR_INVALID_ARG_TYPE(name, "of type number", value);
  if ((min != null && value < min) || (max != null && value > max) || ((min != null || max != null) && Number.isNaN(value))) {
    throw ERR_OUT_OF_RANGE(name, `${min != null ? `>= ${min}` : ""}${min != null && max != null ? " && " : ""}${max != null ? `<= ${max}` : ""}`, value);
  }
}


const BUFFER_IO_METHODS = "readBigUInt64LE readBigUInt64BE readBigUint64LE readBigUint64BE readBigInt64LE readBigInt64BE writeBigUInt64LE writeBigUInt64BE writeBigUint64LE writeBigUint64BE writeBigInt64LE writeBigInt64BE readUIntLE readUInt32LE readUInt16LE readUInt8 readUIntBE readUInt32BE readUInt16BE readUintLE readUint32LE readUint16LE readUint8 readUintBE readUint32BE readUint16BE readIntLE readInt32LE readInt16LE readInt8 readIntBE readInt32BE readInt16BE writeUIntLE writeUInt32LE writeUInt16LE writeUInt8 writeUIntBE writeUInt32BE writeUInt16BE writeUintLE writeUint32LE writeUint16LE writeUint8 writeUintBE writeUint32BE writeUint16BE writeIntLE writeInt32LE writeInt16LE writeInt8 writeIntBE writeInt32BE writeInt16BE readFloatLE readFloatBE readDoubleLE readDoubleBE writeFloatLE writeFloatBE writeDoubleLE writeDoubleBE".split(" ");
let __bufferIO = null;
function bufferIO() {
  if (__bufferIO === null) {
    __bufferIO = __indirectEval(hostx("source", "buffer_io"))({
      ERR_OUT_OF_RANGE, ERR_INVALID_ARG_TYPE, ERR_BUFFER_OUT_OF_BOUNDS, validateNumber,
    });
    for (const name of BUFFER_IO_METHODS) {
      const d = Object.getOwnPropertyDescriptor(Buffer.prototype, name);
      if (d && d.get) Object.defineProperty(Buffer.prototype, name, { value: __bufferIO[name], writable: true, configurable: true, enumerable: true });
    }
  }
  return __bufferIO;
}
for (const name of BUFFER_IO_METHODS) {
  Object.defineProperty(Buffer.prototype, name, {
    configurable: true,
    enumerable: true,
    get() { return bufferIO()[name]; },
    set(v) { Object.defineProperty(this, name, { value: v, writable: true, configurable: true, enumerable: true }); },
  });
}

// ---- concat, compare, equals, subarray / slice (lib/buffer.js) ------------------------------
const kMaxLength = 2 ** 32;
function validateOffset(value, name, min = 0, max = kMaxLength) {
  if (typeof value !== "number") throw ERR_INVALID_ARG_TYPE(name, "of type number", value);
  if (!Number.isInteger(value)) throw ERR_OUT_OF_RANGE(name, "an integer", value);
  if (value < min || value > max) throw ERR_OUT_OF_RANGE(name, `>= ${min} && <= ${max}`, value);
}
function bytesCompare(a, aStart, aEnd, b, bStart, bEnd) {
  const n = Math.min(aEnd - aStart, bEnd - bStart);
  for (let i = 0; i < n; i++) {
    const x = a[aStart + i], y = b[bStart + i];
    if (x !== y) return x < y ? -1 : 1;
  }
  const la = aEnd - aStart, lb = bEnd - bStart;
  return la < lb ? -1 : la > lb ? 1 : 0;
}
const BUFFER_OR_U8 = "an instance of Buffer or Uint8Array";

Buffer.compare = function compare(buf1, buf2) {
  if (!(buf1 instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE("buf1", BUFFER_OR_U8, buf1);
  if (!(buf2 instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE("buf2", BUFFER_OR_U8, buf2);
  if (buf1 === buf2) return 0;
  return bytesCompare(buf1, 0, buf1.length, buf2, 0, buf2.length);
};

Buffer.concat = function concat(list, length) {
  if (!Array.isArray(list)) throw ERR_INVALID_ARG_TYPE("list", "an instance of Array", list);
  if (list.length === 0) return Buffer.alloc(0);
  if (length === undefined) {
    length = 0;
    for (let i = 0; i < list.length; i++) if (list[i].length) length += list[i].length;
  } else {
    validateOffset(length, "length");
  }
  const buffer = Buffer.alloc(length);
  let pos = 0;
  for (let i = 0; i < list.length; i++) {
    const buf = list[i];
    if (!(buf instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE(`list[${i}]`, BUFFER_OR_U8, list[i]);
    const nb = Math.min(buf.length, length - pos);
    if (nb > 0) buffer.set(nb === buf.length ? buf : buf.subarray(0, nb), pos);
    pos += Math.max(0, nb);
  }
  return buffer;
};

Buffer.prototype.equals = function equals(otherBuffer) {
  if (!(otherBuffer instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE("otherBuffer", BUFFER_OR_U8, otherBuffer);
  if (this === otherBuffer) return true;
  if (this.byteLength !== otherBuffer.byteLength) return false;
  return bytesCompare(this, 0, this.length, otherBuffer, 0, otherBuffer.length) === 0;
};

Buffer.prototype.compare = function compare(target, targetStart, targetEnd, sourceStart, sourceEnd) {
  if (!(target instanceof Uint8Array)) throw ERR_INVALID_ARG_TYPE("target", BUFFER_OR_U8, target);
  if (arguments.length === 1) return bytesCompare(this, 0, this.length, target, 0, target.length);
  if (targetStart === undefined) targetStart = 0;
  else validateOffset(targetStart, "targetStart");
  if (targetEnd === undefined) targetEnd = target.length;
  else validateOffset(targetEnd, "targetEnd", 0, target.length);
  if (sourceStart === undefined) sourceStart = 0;
  else validateOffset(sourceStart, "sourceStart");
  if (sourceEnd === undefined) sourceEnd = this.length;
  else validateOffset(sourceEnd, "sourceEnd", 0, this.length);
  if (sourceStart >= sourceEnd) return targetStart >= targetEnd ? 0 : -1;
  if (targetStart >= targetEnd) return 1;
  if (sourceStart > this.length) throw ERR_OUT_OF_RANGE("sourceStart", `<= ${this.length}`, sourceStart);
  if (targetStart > target.length) throw ERR_OUT_OF_RANGE("targetStart", `<= ${target.length}`, targetStart);
  return bytesCompare(this, sourceStart, sourceEnd, target, targetStart, targetEnd);
};

function adjustOffset(offset, length) {
  offset = Math.trunc(offset);
  if (offset === 0) return 0;
  if (offset < 0) {
    offset += length;
    return offset > 0 ? offset : 0;
  }
  if (offset < length) return offset;
  return Number.isNaN(offset) ? 0 : length;
}
Buffer.prototype.subarray = function subarray(start, end) {
  const srcLength = this.length;
  start = adjustOffset(start, srcLength);
  end = end !== undefined ? adjustOffset(end, srcLength) : srcLength;
  const newLength = end > start ? end - start : 0;
  return new Buffer(this.buffer, this.byteOffset + start, newLength);
};
// Node's Buffer#slice is a view, like subarray (Uint8Array#slice copies)
Buffer.prototype.slice = function slice(start, end) {
  return this.subarray(start, end);
};
