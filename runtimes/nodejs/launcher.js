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

// A minimal unzip (stored and deflated entries, no zip64): enough for action
// archives, without a dependency or an `unzip` binary on the gateway.
function unzip(buf, dest) {
  const u16 = (o) => buf.readUInt16LE(o);
  const u32 = (o) => buf.readUInt32LE(o);
  let end = -1; // the end-of-central-directory record, before a comment of up to 64 KiB
  for (let i = buf.length - 22; i >= 0 && i >= buf.length - 22 - 0xffff; i--) {
    if (u32(i) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) throw new Error('no end of central directory');
  let p = u32(end + 16);
  for (let n = u16(end + 10); n > 0; n--) {
    if (u32(p) !== 0x02014b50) throw new Error('bad central directory');
    const flags = u16(p + 8), method = u16(p + 10), size = u32(p + 20), local = u32(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + u16(p + 28));
    p += 46 + u16(p + 28) + u16(p + 30) + u16(p + 32);
    if (flags & 1) throw new Error(`${name} is encrypted`);
    if (size === 0xffffffff || local === 0xffffffff) throw new Error('zip64 is not supported');
    const target = path.resolve(dest, name);
    if (target === dest) continue; // "./"
    if (!target.startsWith(dest + path.sep)) throw new Error(`${name} lies outside the archive`);
    if (name.endsWith('/')) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    if (u32(local) !== 0x04034b50) throw new Error(`bad local header for ${name}`);
    const start = local + 30 + u16(local + 26) + u16(local + 28); // its extra may differ
    const data = buf.subarray(start, start + size);
    if (method !== 0 && method !== 8) throw new Error(`${name}: compression method ${method}`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, method === 0 ? data : require('zlib').inflateRawSync(data));
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

function loadAction(init) {
  for (const [k, v] of Object.entries(init.env || {})) setEnv(k, v);
  if (typeof init.code !== 'string') throw new InitError('the init message has no code');
  const name = init.main || 'main';
  const dir = process.cwd();
  let own, exported;
  try {
    if (init.binary) {
      try {
        unzip(Buffer.from(init.code, 'base64'), dir);
      } catch (e) {
        throw new InitError(`the action code is not a valid base64 zip file: ${e.message}`);
      }
      if (!fs.existsSync('package.json') && !fs.existsSync('index.js')) {
        throw new InitError('the action zip file has neither package.json nor index.js at its root');
      }
      exported = require(dir); // package.json's "main", else index.js
    } else {
      [own, exported] = loadText(init.code, name, path.join(dir, 'index.js'));
    }
  } catch (e) {
    if (e instanceof InitError) throw e;
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
      main = loadAction(msg.value || {});
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
