// Wisp's nodejs launcher: a pre-warmed worker speaking the actionloop protocol.
//
// Wisp starts it as `node launcher.js` with stdin = requests, stdout and
// stderr = the action's logs, fd 3 = replies, cwd = a private directory.
// Protocol (one JSON object per line each way):
//   ack   -> {"ok":true}                              once, before any input
//   init  <- {"value":{"name","main","code","binary","env"}}
//         -> {"ok":true} | {"error":"..."} (then exit 1)
//   run   <- {"value":{params},"namespace":...,"activation_id":...,...}
//         -> main's result, or {"error":"..."}
// Everything on stdout/stderr belongs to the action: the launcher itself only
// ever prints stacks of the action's errors there.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { createRequire } = require('module');

// fd 3 is left alone by libuv, so it stays a blocking pipe: writeSync
// returns once the reply is in it.
const REPLY_FD = 3;

function reply(line) {
  let buf = Buffer.from(line + '\n');
  while (buf.length) buf = buf.subarray(fs.writeSync(REPLY_FD, buf));
}

// Not a formality: libuv makes stdout/stderr pipes non-blocking, and once a
// pipe is full (Wisp reads it no faster than the action logs) further writes
// queue inside this process. An empty write completes after everything
// queued before it, so awaiting it puts every log byte in the pipe before the
// reply that ends the activation.
async function flushLogs() {
  for (const s of [process.stdout, process.stderr]) {
    if (s.writableLength > 0) await new Promise((resolve) => s.write('', () => resolve()));
  }
}

function setEnv(key, value) {
  process.env[key] = typeof value === 'string' ? value : JSON.stringify(value);
}

// The action cannot be loaded; the message is the reply's error. `printed`:
// its stack is already on stderr.
class InitError extends Error {
  constructor(message, printed = false) {
    super(message);
    this.printed = printed;
  }
}

// What an action's zip may expand to: the limits wisp-unzip-exec applies to
// zipped native actions (runtimes/native/unzip.h). The action code limit is
// 48 MB of base64, and a zip bomb of it would otherwise fill the disk.
const ZIP_MAX_ENTRIES = 10000;
const ZIP_MAX_BYTES = 256 * 1024 * 1024; // one entry, and all of them together
const ZIP_BAD = 'There was an error uncompressing the action archive: '; // OpenWhisk's words

class ZipError extends Error {}

// CRC-32 (zip's, the IEEE polynomial): zlib.crc32 is too new for Debian's node.
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

function crc32(crc, buf) {
  let c = ~crc;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

// The entries of the zip in buf, from its central directory (where sizes,
// CRCs and names are the truth; local headers may leave them zero), each
// checked before anything is written: every offset against the buffer, the
// features this reader supports (stored and deflated, no zip64, no
// encryption), names that stay inside the directory, and the limits.
function zipEntries(buf) {
  const need = (off, n, what) => {
    if (off < 0 || off + n > buf.length) throw new ZipError(`${what} lies outside the archive (truncated?)`);
  };
  if (buf.length < 22) throw new ZipError(`not a zip file: ${buf.length} bytes`);
  let end = -1; // the end-of-central-directory record, before a comment of up to 64 KiB
  for (let i = buf.length - 22; i >= 0 && i >= buf.length - 22 - 0xffff; i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) throw new ZipError('not a zip file: no end of central directory');
  const count = buf.readUInt16LE(end + 10);
  let p = buf.readUInt32LE(end + 16);
  if (count === 0xffff || p === 0xffffffff) throw new ZipError('zip64 archives are not supported');
  if (buf.readUInt16LE(end + 4) !== 0 || buf.readUInt16LE(end + 6) !== 0) {
    throw new ZipError('multi-disk archives are not supported');
  }
  if (count > ZIP_MAX_ENTRIES) throw new ZipError(`too many entries: ${count} > ${ZIP_MAX_ENTRIES}`);
  const entries = [];
  const seen = new Set();
  let total = 0;
  for (let n = 0; n < count; n++) {
    need(p, 46, 'the central directory');
    if (buf.readUInt32LE(p) !== 0x02014b50) throw new ZipError('bad central directory record');
    const flags = buf.readUInt16LE(p + 8), method = buf.readUInt16LE(p + 10);
    const crc = buf.readUInt32LE(p + 16), csize = buf.readUInt32LE(p + 20), usize = buf.readUInt32LE(p + 24);
    const nlen = buf.readUInt16LE(p + 28), local = buf.readUInt32LE(p + 42);
    need(p + 46, nlen, 'an entry name');
    const name = buf.toString('utf8', p + 46, p + 46 + nlen);
    const shown = `'${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 80)}'`;
    p += 46 + nlen + buf.readUInt16LE(p + 30) + buf.readUInt16LE(p + 32);
    if (!name.replace(/\/+$/, '')) throw new ZipError(`entry ${shown} names no file`);
    if (name.includes('\\')) throw new ZipError(`entry ${shown}: backslash in its name`);
    if (name.includes('\0')) throw new ZipError(`entry ${shown}: NUL byte in its name`);
    if (name.startsWith('/')) throw new ZipError(`entry ${shown}: absolute path`);
    if (name.split('/').includes('..')) throw new ZipError(`entry ${shown}: '..' leaves the action's directory`);
    if (seen.has(name)) throw new ZipError(`entry ${shown} appears twice`);
    seen.add(name);
    if (flags & 1) throw new ZipError(`entry ${shown} is encrypted`);
    if (csize === 0xffffffff || usize === 0xffffffff || local === 0xffffffff) {
      throw new ZipError(`entry ${shown}: zip64 archives are not supported`);
    }
    const isDir = name.endsWith('/');
    if (isDir) {
      entries.push({ name, shown, isDir });
      continue;
    }
    if (method !== 0 && method !== 8) throw new ZipError(`entry ${shown}: compression method ${method} is not supported`);
    if (method === 0 && csize !== usize) throw new ZipError(`entry ${shown}: stored with different sizes`);
    if (usize > ZIP_MAX_BYTES) throw new ZipError(`entry ${shown} is too large: ${usize} > ${ZIP_MAX_BYTES} bytes`);
    total += usize;
    if (total > ZIP_MAX_BYTES) throw new ZipError(`the archive expands to more than ${ZIP_MAX_BYTES} bytes`);
    need(local, 30, `entry ${shown}: its local header`);
    if (buf.readUInt32LE(local) !== 0x04034b50) throw new ZipError(`entry ${shown}: bad local header`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28); // its extra may differ
    need(start, csize, `entry ${shown}: its data`);
    entries.push({ name, shown, isDir, method, crc, usize, data: buf.subarray(start, start + csize) });
  }
  return entries;
}

// Inflates one entry into fd, a chunk at a time: memory stays small whatever
// the entry's size, and a deflate stream that yields more than the central
// directory says (a header that lies) is cut off there.
function inflateInto(e, fd) {
  return new Promise((resolve, reject) => {
    const inf = require('zlib').createInflateRaw(); // only zipped actions pay for loading it
    let n = 0, crc = 0;
    inf.on('data', (chunk) => {
      n += chunk.length;
      if (n > e.usize) {
        inf.destroy(new ZipError(`entry ${e.shown} inflates to more than its stated ${e.usize} bytes`));
        return;
      }
      crc = crc32(crc, chunk);
      for (let off = 0; off < chunk.length;) off += fs.writeSync(fd, chunk, off);
    });
    inf.on('error', (err) => reject(err instanceof ZipError ? err : new ZipError(`entry ${e.shown}: ${err.message}`)));
    inf.on('end', () => resolve({ n, crc }));
    inf.end(e.data);
  });
}

// Unpacks the zip in buf into dest, which must be empty. Nothing is written
// before every entry has been checked. Symlink entries become small files
// holding the link's target, as in OpenWhisk's runtimes: nothing is ever
// written through a link.
async function unzip(buf, dest) {
  const entries = zipEntries(buf);
  for (const e of entries) {
    const target = path.join(dest, e.name);
    if (e.isDir) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(target, 'wx', 0o644);
    try {
      let got;
      if (e.method === 0) {
        for (let off = 0; off < e.data.length;) off += fs.writeSync(fd, e.data, off);
        got = { n: e.data.length, crc: crc32(0, e.data) };
      } else {
        got = await inflateInto(e, fd);
      }
      if (got.n !== e.usize) throw new ZipError(`entry ${e.shown}: ${got.n} bytes, the archive says ${e.usize}`);
      if (got.crc !== e.crc) throw new ZipError(`entry ${e.shown}: CRC mismatch (corrupt archive)`);
    } finally {
      fs.closeSync(fd);
    }
  }
  return entries;
}

// When every entry sits in one top-level folder that holds one of `wanted`,
// what the author most likely did: zipped the folder, not its contents.
function nestedHint(entries, wanted) {
  const tops = new Set(entries.map((e) => e.name.split('/')[0]));
  if (tops.size !== 1) return '';
  const [top] = tops;
  const names = new Set(entries.map((e) => e.name));
  if (!wanted.some((w) => names.has(`${top}/${w}`))) return '';
  return ` (it is in '${top}/': zip the folder's contents, not the folder)`;
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

// The action's zip, unpacked into dir; what require(dir) will load is
// checked first, so a missing entry point is named, not a resolver stack.
async function unpackZip(code, dir) {
  // Whitespace is allowed (`base64` wraps its lines); anything else outside
  // the alphabet is an error: Buffer.from would skip it without a word.
  const text = code.replace(/\s+/g, '');
  if (!B64.test(text) || text.length % 4 === 1) throw new InitError("The action's code is not valid base64.");
  let entries;
  try {
    entries = await unzip(Buffer.from(text, 'base64'), dir);
  } catch (e) {
    if (e instanceof ZipError) throw new InitError(ZIP_BAD + e.message);
    if (e && e.code) {
      const what = e.path ? `'${path.relative(dir, e.path)}'` : 'a file';
      throw new InitError(`${ZIP_BAD}cannot write ${what}: ${e.code}`);
    }
    throw e;
  }
  const pkgFile = path.join(dir, 'package.json');
  const hasPkg = fs.existsSync(pkgFile);
  if (!hasPkg && !fs.existsSync(path.join(dir, 'index.js'))) {
    // OpenWhisk's message, word for word
    throw new InitError('Zipped actions must contain either package.json or index.js at the root.' +
                        nestedHint(entries, ['package.json', 'index.js']));
  }
  if (hasPkg) {
    let pkg;
    try {
      pkg = JSON.parse(fs.readFileSync(pkgFile, 'utf8'));
    } catch (e) {
      throw new InitError(`the action's package.json is not valid JSON: ${e.message}`);
    }
    try {
      require.resolve(dir); // package.json's "main", else index.js, as require(dir) will
    } catch (_) {
      const main = pkg && typeof pkg.main === 'string' ? pkg.main : null;
      throw new InitError(main === null
        ? "the action's package.json names no \"main\" and the zip file has no index.js"
        : `the action's package.json names main '${main}', which is not in the zip file (nor index.js)`);
    }
  }
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

// Runs text code as a CommonJS module and returns [the binding named `name`
// in its top-level scope, module.exports]. OpenWhisk's runtime accepts a plain
// `function main(args)` as well as exports, so the scope is probed too.
// Nothing is written to disk: Wisp removes a worker's directory with rmdir.
function loadText(code, name, file) {
  const probe = IDENTIFIER.test(name) ? `\n;return typeof ${name} === 'function' ? ${name} : undefined;` : '';
  const fn = vm.compileFunction(code + probe, ['exports', 'require', 'module', '__filename', '__dirname'], { filename: file });
  const mod = { exports: {}, filename: file, id: file };
  const own = fn.call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file));
  return [own, mod.exports];
}

async function loadAction(init) {
  for (const [k, v] of Object.entries(init.env || {})) setEnv(k, v);
  if (typeof init.code !== 'string') throw new InitError('the init message has no code');
  const name = init.main || 'main';
  const dir = process.cwd();
  let own, exported;
  if (init.binary) await unpackZip(init.code, dir);
  try {
    if (init.binary) {
      exported = require(dir); // package.json's "main", else index.js
    } else {
      [own, exported] = loadText(init.code, name, path.join(dir, 'index.js'));
    }
  } catch (e) {
    process.stderr.write(`${(e && e.stack) || e}\n`);
    // The first line only: require()'s "Require stack" and the like are in
    // the stack just printed.
    const what = e && e.name ? `${e.name}: ${String(e.message).split('\n')[0]}` : String(e);
    throw new InitError(`the action failed to load: ${what}`, true);
  }
  const candidates = [own, exported && exported[name], exported];
  const main = candidates.find((f) => typeof f === 'function');
  if (!main) throw new InitError(`the action has no function '${name}' (neither declared nor exported)`);
  return main;
}

function errorReply(e) {
  // OpenWhisk convention: reject({error: ...}) is the action's own error
  // object and goes out untouched.
  if (e !== null && typeof e === 'object' && !(e instanceof Error) && 'error' in e) {
    try {
      return JSON.stringify(e);
    } catch (_) { /* fall through to the generic form */ }
  }
  let message;
  if (e instanceof Error) {
    process.stderr.write(`${e.stack || e}\n`);
    message = e.message || e.name;
  } else {
    try { message = String(e); } catch (_) { message = 'the action failed'; }
  }
  return JSON.stringify({ error: message });
}

function resultReply(result) {
  if (result === undefined) return 'null'; // Wisp decides what that means
  let line, why;
  try {
    line = JSON.stringify(result);
    why = `a ${typeof result}`; // functions and symbols stringify to nothing
  } catch (e) {
    why = e.message; // BigInt, cycles, a throwing toJSON
  }
  if (line !== undefined) return line;
  return JSON.stringify({ error: `The action did not return a JSON-serialisable result: ${why}` });
}

let owKeys = new Set(); // the __OW_ variables the previous run set

async function run(main, msg) {
  const now = new Set();
  for (const [k, v] of Object.entries(msg)) {
    if (k === 'value') continue;
    const key = `__OW_${k.toUpperCase()}`;
    setEnv(key, v);
    now.add(key);
  }
  // A key the previous activation had (api_key, typically) must not leak
  // into this one.
  for (const key of owKeys) if (!now.has(key)) delete process.env[key];
  owKeys = now;
  try {
    return resultReply(await main(msg.value === undefined ? {} : msg.value));
  } catch (e) {
    return errorReply(e);
  }
}

// stdin as lines of bytes. Not readline: it would quietly turn invalid UTF-8
// into U+FFFD and make a corrupt line look valid.
async function* lines(input) {
  let parts = [];
  for await (const chunk of input) {
    let start = 0;
    for (let nl; (nl = chunk.indexOf(10, start)) >= 0; start = nl + 1) {
      parts.push(chunk.subarray(start, nl));
      yield Buffer.concat(parts);
      parts = [];
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length) yield Buffer.concat(parts);
}

async function serve() {
  reply('{"ok":true}');
  let main = null;
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  for await (const line of lines(process.stdin)) {
    let msg;
    try {
      msg = JSON.parse(utf8.decode(line));
    } catch (_) { /* handled below */ }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      reply('{"error":"invalid input line"}');
      continue;
    }
    if (main) {
      const out = await run(main, msg);
      await flushLogs();
      reply(out);
      continue;
    }
    try {
      main = await loadAction(msg.value || {});
    } catch (e) {
      const err = e instanceof InitError ? e.message : `init failed: ${e && e.message}`;
      if (!(e && e.printed)) process.stderr.write(`${err}\n`);
      await flushLogs();
      reply(JSON.stringify({ error: err }));
      // The half-loaded action may have changed anything in this process:
      // it is not worth keeping.
      process.exit(1);
    }
    await flushLogs();
    reply('{"ok":true}');
  }
  // EOF. Exit even if the action left timers or sockets behind.
  await flushLogs();
  process.exit(0);
}

serve();
