// Triggers with feeds through the real `openwhisk` npm client (pinned in
// package.json) against the real wispd and a real mosquitto broker, the way
// `wsk trigger create --feed` does it: the trigger first (annotated with its
// feed), then the feed action invoked blocking with lifecycleEvent CREATE,
// triggerName /_/t and the caller's authKey. Covered: alarms/interval fires
// reaching a rule's action, READ (ow.feeds.get), UPDATE (ow.feeds.update),
// PAUSE/UNPAUSE (ow.feeds.feed), DELETE stopping fires, webhook/hook with an
// HMAC-signed POST, mqtt/subscribe with a publish on the broker, deleting
// the trigger, and errors (missing parameters, an unknown feed, a feed on a
// missing trigger) leaving nothing changed.
//
// Run from tests/integration after `npm ci`:
//   WISPD=../../build/core/wispd node --test test_feeds_client.mjs
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KEY, Wispd, stopProcess, waitFor } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const MOSQUITTO = process.env.MOSQUITTO || '/usr/sbin/mosquitto'
const STOP_MS = 10000

const ALARM = '/whisk.system/alarms/interval'
const ONCE = '/whisk.system/alarms/once'
const HOOK = '/whisk.system/webhook/hook'
const MQTT = '/whisk.system/mqtt/subscribe'

// An unmodified actionloop program (python with #!) as a native action: it
// answers each activation with its parameters.
const ECHO = [
  '#!/usr/bin/python3',
  'import json, os, sys',
  "out = os.fdopen(3, 'w')",
  "if os.environ.get('__OW_WAIT_FOR_ACK'):",
  "    out.write('{\"ok\":true}\\n'); out.flush()",
  'for line in sys.stdin:',
  "    out.write(json.dumps(json.loads(line)['value']) + '\\n'); out.flush()",
  ''
].join('\n')

let ow
let apihost
const broker = { proc: null, port: 0, dir: null, log: '' }
const daemon = new Wispd()

// ---- helpers -------------------------------------------------------------------


/** The promise rejects with the client's OpenWhiskError carrying an OpenWhisk error body. */
async function rejectsWith (promise, status, message) {
  await assert.rejects(promise, err => {
    assert.equal(err.name, 'OpenWhiskError', String(err && err.stack))
    assert.equal(err.statusCode, status, err.message)
    assert.equal(typeof err.error, 'object', err.message)
    assert.equal(typeof err.error.error, 'string', err.message)
    assert.equal(typeof err.error.code, 'string', err.message)
    if (message !== undefined) assert.ok(err.error.error.includes(message), err.message)
    // the client's own message carries the daemon's explanation
    assert.ok(err.message.includes(err.error.error), err.message)
    return true
  })
}

/** A feed action that refuses the event: 502 with its activation record,
 * an application error with the message (OpenWhisk's failed action), which
 * the client shows. */
async function refusedWith (promise, message) {
  await assert.rejects(promise, err => {
    assert.equal(err.name, 'OpenWhiskError', String(err && err.stack))
    assert.equal(err.statusCode, 502, err.message)
    const rec = err.error
    assert.equal(rec.response.status, 'application error', err.message)
    assert.equal(rec.response.success, false, err.message)
    assert.equal(typeof rec.response.result.error, 'string', err.message)
    assert.match(rec.activationId, /^[0-9a-f]{32}$/)
    if (message !== undefined) assert.ok(rec.response.result.error.includes(message), err.message)
    assert.ok(err.message.includes(rec.response.result.error), err.message)
    return true
  })
}

/** A feed action's answer: a successful activation of /whisk.system/<pkg>/<name>. */
function feedResult (rec, feed) {
  const [, , pkg, name] = feed.split('/')
  assert.match(rec.activationId, /^[0-9a-f]{32}$/, JSON.stringify(rec))
  assert.equal(rec.name, name)
  assert.equal(rec.namespace, 'guest')
  assert.deepEqual(rec.response.status, 'success', JSON.stringify(rec))
  assert.equal(rec.response.success, true)
  const path = rec.annotations.find(a => a.key === 'path')
  assert.equal(path && path.value, `whisk.system/${pkg}/${name}`)
  return rec.response.result
}

const feedAnnotation = feed => ({ annotations: [{ key: 'feed', value: feed }] })

/** `wsk trigger create NAME --feed FEED -p ...`: the trigger, then the feed's CREATE. */
async function triggerWithFeed (name, feed, params) {
  const t = await ow.triggers.create({ name, trigger: feedAnnotation(feed) })
  assert.deepEqual(t.annotations, [{ key: 'feed', value: feed }])
  const res = feedResult(await ow.feeds.create({ name: feed, trigger: name, params }), feed)
  assert.equal(res.status, 'created', JSON.stringify(res))
  assert.equal(res.feed, feed)
  return res
}

const activations = name => ow.activations.list({ name, docs: true, limit: 200 })
const fromTrigger = (recs, key, value) => recs.filter(a => a.response.result[key] === value)
const read = (trigger, feed) => ow.feeds.get({ name: feed, trigger }).then(r => feedResult(r, feed))

async function metric (name) {
  const text = await (await fetch(`${apihost}/metrics`)).text()
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text)
  assert.ok(m, `${name} in /metrics`)
  return Number(m[1])
}

/** What the store holds for the namespace: triggers (with rules), rules, bindings. */
async function snapshot () {
  const triggers = await ow.triggers.list({ limit: 200 })
  const rules = await ow.rules.list({ limit: 200 })
  const docs = []
  for (const t of triggers) {
    const { feed, ...doc } = await ow.triggers.get({ name: t.name })
    docs.push([t.name, doc, feed !== undefined]) // feed: the live status (its counters move)
  }
  return { docs, rules: rules.map(r => [r.name, r.version]), bindings: await metric('wisp_feed_bindings') }
}

// ---- the broker ----------------------------------------------------------------

function freePort () {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

const canConnect = port => new Promise(resolve => {
  const c = createConnection({ host: '127.0.0.1', port }, () => { c.destroy(); resolve(true) })
  c.on('error', () => resolve(false))
})

/** A private mosquitto on a free loopback port; a start that loses the port race is retried. */
async function startBroker () {
  broker.dir = mkdtempSync(join(tmpdir(), 'wisp-js-mqtt-'))
  for (let attempt = 0; attempt < 5; attempt++) {
    broker.port = await freePort()
    const conf = join(broker.dir, 'mosquitto.conf')
    writeFileSync(conf, `listener ${broker.port} 127.0.0.1\nallow_anonymous true\npersistence false\n`)
    const proc = spawn(MOSQUITTO, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
    broker.proc = proc
    broker.exited = new Promise(resolve => proc.on('exit', (code, signal) => resolve({ code, signal })))
    let gone = false
    broker.exited.then(() => { gone = true })
    proc.stdout.on('data', d => { broker.log += d })
    proc.stderr.on('data', d => { broker.log += d })
    const up = await waitFor(async () => gone ? 'gone' : (await canConnect(broker.port)) && 'up',
      `mosquitto on port ${broker.port}`, 10000)
    if (up === 'up') return `mqtt://127.0.0.1:${broker.port}`
  }
  assert.fail(`mosquitto did not start:\n${broker.log}`)
}

async function stopBroker () {
  const proc = broker.proc
  try {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      await stopProcess(proc, broker.exited, STOP_MS)
    }
  } finally {
    if (broker.dir) rmSync(broker.dir, { recursive: true, force: true })
  }
}

/** mosquitto_pub, QoS 1; resolves once it exits 0. */
function publish (topic, message) {
  return new Promise((resolve, reject) => {
    const p = spawn('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-t', topic,
      '-m', message, '-q', '1'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', d => { err += d })
    p.on('error', reject)
    p.on('exit', code => code === 0 ? resolve() : reject(new Error(`mosquitto_pub exited ${code}: ${err}`)))
  })
}

// ---- setup ---------------------------------------------------------------------

before(async () => {
  const url = await startBroker()
  daemon.args = ['--mqtt', url, '--prewarm', '']
  const port = await daemon.start()
  apihost = `http://127.0.0.1:${port}`
  ow = openwhisk({ apihost, api_key: KEY })
  await ow.actions.create({ name: 'echo', action: { exec: { kind: 'native', code: ECHO } } })
  // a clock: an interval trigger whose fires show that time has passed, so a
  // test can tell "nothing happened" without guessing a duration
  await triggerWithFeed('clock', ALARM, { seconds: 1 })
})

after(async () => {
  try {
    await daemon.stop()
  } finally {
    await stopBroker()
  }
})

/** Resolves after the clock trigger's feed has fired n more times. */
async function ticks (n) {
  const s0 = await read('clock', ALARM)
  const start = s0.fires + s0.drops
  await waitFor(async () => {
    const s = await read('clock', ALARM)
    return s.fires + s.drops >= start + n
  }, `${n} clock ticks`)
}

// ---- alarms --------------------------------------------------------------------

describe('alarms/interval through ow.feeds', () => {
  test('fires reach the rule\'s action; READ, PAUSE, UNPAUSE, UPDATE, DELETE', async () => {
    await triggerWithFeed('tick', ALARM, { seconds: 1, trigger_payload: { src: 'tick' } })
    await ow.rules.create({ name: 'rtick', trigger: 'tick', action: 'echo' })

    // two fires reach echo, each caused by a trigger activation of 'tick'
    const recs = await waitFor(async () => {
      const r = fromTrigger(await activations('echo'), 'src', 'tick')
      return r.length >= 2 && r
    }, 'two interval fires reaching echo')
    const fires = await activations('tick')
    for (const a of recs) {
      assert.equal(a.response.success, true)
      const cause = fires.find(f => f.activationId === a.cause)
      assert.ok(cause, `echo activation ${a.activationId} caused by a fire of tick`)
      assert.deepEqual(cause.response.result, { src: 'tick' })
      const line = JSON.parse(cause.logs[0])
      assert.equal(line.rule, 'guest/rtick')
      assert.equal(line.activationId, a.activationId)
    }

    // READ: the binding's parameters and status
    let st = await read('tick', ALARM)
    assert.equal(st.feed, ALARM)
    assert.equal(st.kind, 'interval')
    assert.equal(st.seconds, 1)
    assert.deepEqual(st.trigger_payload, { src: 'tick' })
    assert.equal(st.paused, false)
    assert.equal(st.state, 'scheduled')
    assert.equal(typeof st.nextFire, 'number')
    assert.ok(st.fires >= 2, JSON.stringify(st))
    // the trigger itself keeps its feed annotation
    const t = await ow.triggers.get({ name: 'tick' })
    assert.deepEqual(t.annotations, [{ key: 'feed', value: ALARM }])
    assert.ok(t.rules['guest/rtick'], JSON.stringify(t))

    // PAUSE: slots come due and are dropped, nothing fires
    assert.deepEqual(feedResult(await ow.feeds.feed('PAUSE', { name: ALARM, trigger: 'tick' }), ALARM),
      { status: 'paused' })
    st = await read('tick', ALARM)
    assert.equal(st.paused, true)
    const paused = st
    await waitFor(async () => (await read('tick', ALARM)).drops >= paused.drops + 2, 'two dropped slots')
    assert.equal((await read('tick', ALARM)).fires, paused.fires)

    // UNPAUSE: fires again
    assert.deepEqual(feedResult(await ow.feeds.feed('UNPAUSE', { name: ALARM, trigger: 'tick' }), ALARM),
      { status: 'active' })
    const before = fromTrigger(await activations('echo'), 'src', 'tick').length
    await waitFor(async () => fromTrigger(await activations('echo'), 'src', 'tick').length > before,
      'a fire after UNPAUSE')

    // UPDATE: new parameters over the old ones
    const up = feedResult(await ow.feeds.update({ name: ALARM, trigger: 'tick',
      params: { seconds: 2, trigger_payload: { src: 'tick2' } } }), ALARM)
    assert.deepEqual(up, { status: 'updated', feed: ALARM })
    st = await read('tick', ALARM)
    assert.equal(st.seconds, 2)
    assert.deepEqual(st.trigger_payload, { src: 'tick2' })
    await waitFor(async () => fromTrigger(await activations('echo'), 'src', 'tick2').length >= 1,
      'a fire with the updated payload')

    // DELETE: the binding goes, and no more fires come
    assert.deepEqual(feedResult(await ow.feeds.delete({ name: ALARM, trigger: 'tick' }), ALARM),
      { status: 'deleted' })
    await refusedWith(ow.feeds.get({ name: ALARM, trigger: 'tick' }), 'has no')
    assert.equal((await ow.triggers.get({ name: 'tick' })).feed, undefined)
    // a fire already dispatched may still be finishing: count once it settles
    await ticks(2)
    const settled = (await activations('tick')).length
    await ticks(3)
    assert.equal((await activations('tick')).length, settled, 'tick fired after its feed was deleted')

    // the trigger goes too
    await ow.rules.delete({ name: 'rtick' })
    await ow.triggers.delete({ name: 'tick' })
    await rejectsWith(ow.triggers.get({ name: 'tick' }), 404)
  })

  test('deleting a trigger drops its feed binding', async () => {
    const n = await metric('wisp_feed_bindings')
    await triggerWithFeed('gone', ALARM, { minutes: 5 })
    assert.equal(await metric('wisp_feed_bindings'), n + 1)
    assert.equal((await read('gone', ALARM)).minutes, 5)
    await ow.triggers.delete({ name: 'gone' })
    assert.equal(await metric('wisp_feed_bindings'), n)
    await refusedWith(ow.feeds.get({ name: ALARM, trigger: 'gone' }), 'has no')
  })

  test('alarms/once with deleteAfterFire "rules": trigger and rules go after the fire', async () => {
    await triggerWithFeed('once', ONCE, { date: new Date(Date.now() + 1500).toISOString(),
      deleteAfterFire: 'rules', trigger_payload: { src: 'once' } })
    await ow.rules.create({ name: 'ronce', trigger: 'once', action: 'echo' })
    assert.equal((await read('once', ONCE)).deleteAfterFire, 'rules')
    await waitFor(async () => fromTrigger(await activations('echo'), 'src', 'once').length === 1,
      'the once fire reaching echo')
    await waitFor(async () => {
      try {
        await ow.triggers.get({ name: 'once' })
        return false
      } catch (e) {
        return e.statusCode === 404
      }
    }, 'the trigger deleted after its fire')
    await rejectsWith(ow.rules.get({ name: 'ronce' }), 404)
    await refusedWith(ow.feeds.get({ name: ONCE, trigger: 'once' }), 'has no')
    // one fire of the trigger (the feed action's own records share its name)
    const path = a => a.annotations.find(x => x.key === 'path').value
    assert.equal((await activations('once')).filter(a => path(a) === 'guest/once').length, 1)
  })
})

// ---- webhook -------------------------------------------------------------------

describe('webhook/hook through ow.feeds', () => {
  test('the returned URL takes HMAC-signed POSTs; DELETE retires it', async () => {
    const secret = 'a-webhook-secret-0123456789'
    const res = await triggerWithFeed('gh', HOOK, { secret, trigger_payload: { via: 'hook' } })
    assert.match(res.url, /^\/hooks\/[0-9a-f]{32}$/)
    await ow.rules.create({ name: 'rgh', trigger: 'gh', action: 'echo' })
    const post = (body, sig) => fetch(apihost + res.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(sig ? { 'X-Hub-Signature-256': sig } : {}) },
      body
    })
    const sign = body => 'sha256=' + createHmac('sha256', secret).update(body).digest('hex')

    const body = JSON.stringify({ ref: 'main', n: 1 })
    let r = await post(body, sign(body))
    assert.equal(r.status, 202, await r.text())
    const rec = await waitFor(async () => fromTrigger(await activations('echo'), 'ref', 'main')[0],
      'the webhook fire reaching echo')
    assert.deepEqual(rec.response.result, { via: 'hook', ref: 'main', n: 1 })
    assert.equal((await read('gh', HOOK)).fires, 1)

    // a wrong or missing signature: 401 in OpenWhisk's error shape, no fire
    r = await post(body, sign(body + ' '))
    assert.equal(r.status, 401)
    const e = await r.json()
    assert.equal(typeof e.error, 'string')
    assert.equal(typeof e.code, 'string')
    assert.equal((await post(body)).status, 401)
    const st = await read('gh', HOOK)
    assert.equal(st.fires, 1)
    assert.equal(st.rejected, 2)
    assert.equal(st.secret, undefined, 'READ must not show the secret')

    // DELETE: the URL is gone
    feedResult(await ow.feeds.delete({ name: HOOK, trigger: 'gh' }), HOOK)
    assert.equal((await post(body, sign(body))).status, 404)
    await ow.rules.delete({ name: 'rgh' })
    await ow.triggers.delete({ name: 'gh' })
  })
})

// ---- mqtt ----------------------------------------------------------------------

describe('mqtt/subscribe through ow.feeds', () => {
  test('a publish on the broker fires the trigger; deleting the trigger unsubscribes', async () => {
    await triggerWithFeed('sensors', MQTT, { topic: 'sensors/+/temp', qos: 1 })
    await ow.rules.create({ name: 'rsensors', trigger: 'sensors', action: 'echo' })
    await waitFor(async () => (await read('sensors', MQTT)).subscribed, 'the subscription acknowledged')
    const st = await read('sensors', MQTT)
    assert.equal(st.topic, 'sensors/+/temp')
    assert.equal(st.qos, 1)
    assert.equal(st.connected, true)

    await publish('sensors/kitchen/temp', JSON.stringify({ c: 21.5 }))
    const rec = await waitFor(async () => fromTrigger(await activations('echo'), 'topic',
      'sensors/kitchen/temp')[0], 'the MQTT fire reaching echo')
    assert.deepEqual(rec.response.result, { c: 21.5, topic: 'sensors/kitchen/temp' })
    await publish('elsewhere/kitchen/temp', JSON.stringify({ c: 1 }))
    assert.equal((await read('sensors', MQTT)).fires, 1)

    // deleting the trigger (as ow.triggers.delete does, without a feed DELETE)
    const n = await metric('wisp_feed_bindings')
    await ow.triggers.delete({ name: 'sensors' })
    assert.equal(await metric('wisp_feed_bindings'), n - 1)
    await refusedWith(ow.feeds.get({ name: MQTT, trigger: 'sensors' }), 'has no')
    // a witness on a wider filter shows when the next message has reached
    // wispd; a binding left behind would fire into the deleted trigger and
    // count a drop
    await triggerWithFeed('witness', MQTT, { topic: 'sensors/#' })
    await waitFor(async () => (await read('witness', MQTT)).subscribed, 'the witness subscribed')
    const drops = await metric('wisp_feed_drops_total')
    await publish('sensors/hall/temp', JSON.stringify({ c: 19 }))
    await waitFor(async () => (await read('witness', MQTT)).fires >= 1, 'the witness fired')
    assert.equal((await read('witness', MQTT)).fires, 1)
    assert.equal(await metric('wisp_feed_drops_total'), drops)
    assert.equal(fromTrigger(await activations('echo'), 'topic', 'sensors/hall/temp').length, 0)
    await ow.triggers.delete({ name: 'witness' })
    await ow.rules.delete({ name: 'rsensors' })
  })
})

// ---- errors --------------------------------------------------------------------

describe('feed errors through the client', () => {
  test('missing parameters, an unknown feed, a missing trigger: errors, nothing bound', async () => {
    await ow.triggers.create({ name: 'bad', trigger: feedAnnotation(ALARM) })
    const before = await snapshot()

    await refusedWith(ow.feeds.create({ name: ALARM, trigger: 'bad', params: {} }), 'minutes')
    await refusedWith(ow.feeds.create({ name: ALARM, trigger: 'bad', params: { minutes: 0 } }),
      'minutes')
    await refusedWith(ow.feeds.create({ name: '/whisk.system/alarms/alarm', trigger: 'bad',
      params: { cron: '61 * * * *' } }), 'cron')
    await refusedWith(ow.feeds.create({ name: HOOK, trigger: 'bad', params: {} }), 'secret')
    await refusedWith(ow.feeds.create({ name: MQTT, trigger: 'bad', params: {} }), 'topic')
    await rejectsWith(ow.feeds.create({ name: '/whisk.system/alarms/nope', trigger: 'bad',
      params: { minutes: 1 } }), 404)
    // a package that is not there: 403, as OpenWhisk answers for another namespace
    await rejectsWith(ow.feeds.create({ name: '/whisk.system/nope/nope', trigger: 'bad',
      params: { minutes: 1 } }), 403)
    await refusedWith(ow.feeds.create({ name: ALARM, trigger: 'missing', params: { minutes: 1 } }),
      'missing')
    await refusedWith(ow.feeds.feed('PAUSE', { name: ALARM, trigger: 'bad' }), 'has no')
    await refusedWith(ow.feeds.delete({ name: ALARM, trigger: 'bad' }), 'has no')
    await refusedWith(ow.feeds.get({ name: ALARM, trigger: 'bad' }), 'has no')
    // another namespace's trigger
    await refusedWith(ow.feeds.create({ name: ALARM, trigger: '/other/bad', params: { minutes: 1 } }),
      'not authorized')
    // the client refuses a feed call without a trigger before sending it
    assert.throws(() => ow.feeds.create({ name: ALARM, params: { minutes: 1 } }), /trigger/i)

    assert.deepEqual(await snapshot(), before)
    await rejectsWith(ow.triggers.get({ name: 'missing' }), 404)
    await ow.triggers.delete({ name: 'bad' })
  })
})
