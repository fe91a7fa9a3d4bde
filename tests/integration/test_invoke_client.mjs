// Invocation through the real `openwhisk` npm client (pinned in
// package.json) against the real wispd: actions.invoke blocking (with and
// without result), non-blocking, activations.get / logs / result / list,
// errors as the client surfaces them, and a sequence.
//
// Run from tests/integration after `npm ci`:
//   WISPD=../../build/core/wispd node --test test_invoke_client.mjs
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { KEY, NODE_KIND, Wispd, waitFor } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')


const ID_RE = /^[0-9a-f]{32}$/
const LOG_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) +(stdout|stderr): (.*)$/s
const RECORD_KEYS = ['activationId', 'annotations', 'duration', 'end', 'logs', 'name', 'namespace',
  'publish', 'response', 'start', 'subject', 'version']

const PY_HELLO = [
  'import sys',
  'def main(args):',
  '    print("hello", args.get("name"))',
  '    print("on stderr", file=sys.stderr)',
  '    return {"greeting": "hello " + args.get("name", "stranger"), "site": args.get("site")}',
  ''
].join('\n')
const NODE_ASYNC = 'async function main (a) { console.log("node got", a.greeting); ' +
  'return { shout: a.greeting.toUpperCase(), site: a.site } }'
const PY_FAIL = 'def main(args):\n    raise ValueError("it broke")\n'

let apihost
let ow
const daemon = new Wispd()
const startWispd = () => daemon.start()
const stopWispd = () => daemon.stop()

// ---- helpers -------------------------------------------------------------------


const annotations = rec => Object.fromEntries(rec.annotations.map(a => [a.key, a.value]))

function logParts (rec) {
  return rec.logs.map(line => {
    const m = LOG_RE.exec(line)
    assert.ok(m, `log line not in OpenWhisk's form: ${JSON.stringify(line)}`)
    return [m[2], m[3]]
  })
}

/** OpenWhisk's activation record shape. */
function checkRecord (rec, { name, path, kind, status = 'success', cause }) {
  const keys = cause ? [...RECORD_KEYS, 'cause'].sort() : RECORD_KEYS
  assert.deepEqual(Object.keys(rec).sort(), keys, JSON.stringify(rec))
  assert.match(rec.activationId, ID_RE)
  assert.equal(rec.namespace, 'guest')
  assert.equal(rec.subject, 'guest')
  assert.equal(rec.name, name)
  assert.equal(rec.version, '0.0.1')
  assert.equal(rec.publish, false)
  assert.ok(rec.start <= rec.end, JSON.stringify(rec))
  assert.equal(rec.duration, rec.end - rec.start)
  if (cause) assert.equal(rec.cause, cause)
  const codes = { success: 0, 'application error': 1, 'action developer error': 2, 'whisk internal error': 3 }
  assert.deepEqual(Object.keys(rec.response).sort(), ['result', 'status', 'statusCode', 'success'])
  assert.equal(rec.response.status, status)
  assert.equal(rec.response.statusCode, codes[status])
  assert.equal(rec.response.success, status === 'success')
  const a = annotations(rec)
  assert.equal(a.path, path)
  assert.equal(a.kind, kind)
  assert.equal(typeof a.waitTime, 'number')
  assert.equal(a.timeout, false)
  assert.deepEqual(Object.keys(a.limits).sort(), ['concurrency', 'logs', 'memory', 'timeout'])
  return rec
}

before(async () => {
  const port = await startWispd()
  apihost = `http://127.0.0.1:${port}`
  ow = openwhisk({ apihost, api_key: KEY })
  await ow.packages.create({ name: 'site', package: { parameters: [{ key: 'site', value: 'north' }] } })
  await ow.actions.create({ name: 'site/hello', action: PY_HELLO, kind: 'python:3', params: { name: 'default' } })
  await ow.actions.create({ name: 'shout', action: NODE_ASYNC, kind: NODE_KIND })
  await ow.actions.create({ name: 'fails', action: PY_FAIL, kind: 'python:3' })
  await ow.actions.create({ name: 'chain', sequence: ['/_/site/hello', '/guest/shout'] })
})

after(stopWispd)

describe('actions.invoke', () => {
  test('blocking with result: true gives the result, parameters merged', async () => {
    const r = await ow.actions.invoke({ name: 'site/hello', blocking: true, result: true, params: { name: 'edge' } })
    assert.deepEqual(r, { greeting: 'hello edge', site: 'north' })
    const d = await ow.actions.invoke({ name: 'site/hello', blocking: true, result: true })
    assert.deepEqual(d, { greeting: 'hello default', site: 'north' })
  })

  test('blocking without result gives the activation record', async () => {
    const rec = await ow.actions.invoke({ name: 'site/hello', blocking: true, params: { name: 'rec' } })
    checkRecord(rec, { name: 'hello', path: 'guest/site/hello', kind: 'python:3' })
    assert.deepEqual(rec.response.result, { greeting: 'hello rec', site: 'north' })
    assert.deepEqual(logParts(rec).sort(), [['stderr', 'on stderr'], ['stdout', 'hello rec']])
    const n = await ow.actions.invoke({ name: 'shout', blocking: true, params: { greeting: 'hey', site: 's' } })
    checkRecord(n, { name: 'shout', path: 'guest/shout', kind: NODE_KIND })
    assert.deepEqual(n.response.result, { shout: 'HEY', site: 's' })
    assert.deepEqual(logParts(n), [['stdout', 'node got hey']])
  })

  test('non-blocking returns an activationId; the record follows', async () => {
    const r = await ow.actions.invoke({ name: 'shout', params: { greeting: 'later' } })
    assert.deepEqual(Object.keys(r), ['activationId'])
    assert.match(r.activationId, ID_RE)
    const rec = await waitFor(() => ow.activations.get({ activationId: r.activationId }), 'the activation record')
    checkRecord(rec, { name: 'shout', path: 'guest/shout', kind: NODE_KIND })
    assert.equal(rec.activationId, r.activationId)
    assert.deepEqual(rec.response.result, { shout: 'LATER' })
  })

  test('an application error rejects with 502 and the record', async () => {
    await assert.rejects(ow.actions.invoke({ name: 'fails', blocking: true }), err => {
      assert.equal(err.name, 'OpenWhiskError')
      assert.equal(err.statusCode, 502, err.message)
      checkRecord(err.error, { name: 'fails', path: 'guest/fails', kind: 'python:3', status: 'application error' })
      assert.deepEqual(err.error.response.result, { error: 'it broke' })
      assert.match(err.message, /it broke/)
      return true
    })
    await assert.rejects(ow.actions.invoke({ name: 'fails', blocking: true, result: true }), err => {
      assert.equal(err.statusCode, 502, err.message)
      assert.match(err.message, /it broke/)
      return true
    })
  })

  test('an unknown action rejects with 404', async () => {
    await assert.rejects(ow.actions.invoke({ name: 'nope', blocking: true }), err => {
      assert.equal(err.statusCode, 404, err.message)
      assert.equal(err.error.error, 'The requested resource does not exist.')
      assert.equal(typeof err.error.code, 'string')
      return true
    })
  })

  test('a sequence: python then node, the result flows through', async () => {
    const r = await ow.actions.invoke({ name: 'chain', blocking: true, result: true, params: { name: 'seq' } })
    assert.deepEqual(r, { shout: 'HELLO SEQ', site: 'north' })
    const rec = await ow.actions.invoke({ name: 'chain', blocking: true, params: { name: 'two' } })
    checkRecord(rec, { name: 'chain', path: 'guest/chain', kind: 'sequence' })
    assert.equal(annotations(rec).topmost, true)
    assert.deepEqual(rec.response.result, { shout: 'HELLO TWO', site: 'north' })
    assert.equal(rec.logs.length, 2)
    const [c1, c2] = await Promise.all(rec.logs.map(id => ow.activations.get(id)))
    checkRecord(c1, { name: 'hello', path: 'guest/site/hello', kind: 'python:3', cause: rec.activationId })
    checkRecord(c2, { name: 'shout', path: 'guest/shout', kind: NODE_KIND, cause: rec.activationId })
    assert.deepEqual(c1.response.result, { greeting: 'hello two', site: 'north' })
    assert.deepEqual(c2.response.result, { shout: 'HELLO TWO', site: 'north' })
    // non-blocking too
    const nb = await ow.actions.invoke({ name: 'chain', params: { name: 'nb' } })
    const later = await waitFor(() => ow.activations.get(nb.activationId), 'the sequence record')
    assert.deepEqual(later.response.result, { shout: 'HELLO NB', site: 'north' })
  })
})

describe('activations', () => {
  let rec
  before(async () => {
    // a start time no earlier activation shares, so "newest first" has one answer
    const latest = Math.max(...(await ow.activations.list({ limit: 200 })).map(s => s.end))
    await waitFor(() => Date.now() > latest + 2, 'the clock to move on')
    rec = await ow.actions.invoke({ name: 'site/hello', blocking: true, params: { name: 'act' } })
  })

  test('get, logs, result', async () => {
    assert.deepEqual(await ow.activations.get(rec.activationId), rec)
    assert.deepEqual(await ow.activations.get({ name: rec.activationId }), rec)
    const logs = await ow.activations.logs({ activationId: rec.activationId })
    assert.deepEqual(logs, { logs: rec.logs })
    assert.equal(logs.logs.length, 2)
    const result = await ow.activations.result({ activationId: rec.activationId })
    assert.deepEqual(result, rec.response)
    assert.deepEqual(result, { status: 'success', statusCode: 0, success: true, result: { greeting: 'hello act', site: 'north' } })
  })

  test('unknown ids reject with 404', async () => {
    for (const op of ['get', 'logs', 'result']) {
      await assert.rejects(ow.activations[op]('0'.repeat(32)), err => {
        assert.equal(err.statusCode, 404, `${op}: ${err.message}`)
        return true
      })
    }
  })

  test('list: newest first, name, limit, skip, docs, count', async () => {
    const all = await ow.activations.list({ limit: 200 })
    assert.ok(all.length >= 10, `${all.length} activations`)
    assert.equal(all[0].activationId, rec.activationId)
    for (let i = 1; i < all.length; i++) assert.ok(all[i - 1].start >= all[i].start, 'newest first')
    for (const s of all) {
      assert.ok(!('logs' in s) && !('response' in s), JSON.stringify(s))
      assert.match(s.activationId, ID_RE)
    }
    const hello = await ow.activations.list({ name: 'hello', limit: 200 })
    assert.ok(hello.length >= 5)
    assert.ok(hello.every(s => s.name === 'hello'))
    assert.deepEqual(hello.map(s => s.activationId),
      all.filter(s => s.name === 'hello').map(s => s.activationId))
    const two = await ow.activations.list({ limit: 2, skip: 1 })
    assert.deepEqual(two.map(s => s.activationId), all.slice(1, 3).map(s => s.activationId))
    const docs = await ow.activations.list({ name: 'hello', limit: 1, docs: true })
    assert.deepEqual(docs, [rec])
    assert.deepEqual(await ow.activations.list({ count: true }), { activations: all.length })
    assert.deepEqual(await ow.activations.list({ name: 'shout', count: true }),
      { activations: all.filter(s => s.name === 'shout').length })
    const since = await ow.activations.list({ since: rec.start, limit: 200 })
    assert.deepEqual(since.map(s => s.activationId), all.filter(s => s.start >= rec.start).map(s => s.activationId))
  })
})
