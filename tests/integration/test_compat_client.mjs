// The rest of OpenWhisk's surface an existing project touches, through the
// real `openwhisk` npm client: a zip action sent as a Buffer (the client
// sends base64 code without `binary`), /whisk.system/utils from a user
// namespace and as sequence components, a sequence naming a missing
// component, another namespace's published packages, a trigger whose
// `feed` annotation names an action of the user's, and the info document
// at / that deploy tools read.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { deflateRawSync } from 'node:zlib'
import { KEY, Wispd, waitFor } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const WISP_CLI = process.env.WISP_CLI

// A zip with deflated entries, as `zip` makes them (crc32 by table).
const CRC = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
function crc32 (buf) {
  let c = 0xffffffff
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
function zip (files) {
  const locals = []
  const centrals = []
  let off = 0
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text)
    const packed = deflateRawSync(data)
    const nm = Buffer.from(name)
    const head = Buffer.alloc(30)
    head.writeUInt32LE(0x04034b50, 0); head.writeUInt16LE(20, 4); head.writeUInt16LE(8, 8)
    head.writeUInt32LE(crc32(data), 14); head.writeUInt32LE(packed.length, 18)
    head.writeUInt32LE(data.length, 22); head.writeUInt16LE(nm.length, 26)
    const cen = Buffer.alloc(46)
    cen.writeUInt32LE(0x02014b50, 0); cen.writeUInt16LE(20, 4); cen.writeUInt16LE(20, 6)
    cen.writeUInt16LE(8, 10); cen.writeUInt32LE(crc32(data), 16)
    cen.writeUInt32LE(packed.length, 20); cen.writeUInt32LE(data.length, 24)
    cen.writeUInt16LE(nm.length, 28); cen.writeUInt32LE(off, 42)
    locals.push(head, nm, packed)
    centrals.push(cen, nm)
    off += head.length + nm.length + packed.length
  }
  const cd = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(centrals.length / 2, 8)
  end.writeUInt16LE(centrals.length / 2, 10); end.writeUInt32LE(cd.length, 12)
  end.writeUInt32LE(off, 16)
  return Buffer.concat([...locals, cd, end])
}

let ow, other, apihost
const daemon = new Wispd()

before(async () => {
  const port = await daemon.start()
  apihost = `http://127.0.0.1:${port}`
  ow = openwhisk({ apihost, api_key: KEY })
  // a second namespace, made offline beside the running daemon as an admin does
  const key = execFileSync(WISP_CLI, ['admin', '--data', daemon.dataDir, 'user', 'create', 'team2'],
    { encoding: 'utf8' }).trim()
  other = openwhisk({ apihost, api_key: key })
})

after(() => daemon.stop())

describe('zip actions through the client', () => {
  test('a python zip sent as a Buffer runs', async () => {
    const action = zip({ '__main__.py': 'import helper\ndef main(a):\n    return {"v": helper.v(a)}\n',
      'helper.py': 'def v(a):\n    return a.get("x", 0) * 2\n' })
    const a = await ow.actions.create({ name: 'pyzip', action, kind: 'python:3' })
    assert.equal(a.exec.binary, true)
    assert.deepEqual(await ow.actions.invoke({ name: 'pyzip', params: { x: 21 }, blocking: true, result: true }),
      { v: 42 })
  })

  test('a nodejs zip with package.json main and node_modules runs', async () => {
    const action = zip({ 'package.json': JSON.stringify({ main: 'lib/entry.js' }),
      'lib/entry.js': 'const dep = require("dep")\nexports.main = a => ({ got: dep(a.n) })\n',
      'node_modules/dep/index.js': 'module.exports = n => n + 1\n' })
    await ow.actions.create({ name: 'nodezip', action, kind: 'nodejs:default' })
    assert.deepEqual(await ow.actions.invoke({ name: 'nodezip', params: { n: 1 }, blocking: true, result: true }),
      { got: 2 })
  })

  test('a broken zip is a developer error at init, and wispd goes on', async () => {
    const action = Buffer.from('PK\u0003\u0004 this is not a zip at all')
    await ow.actions.create({ name: 'badzip', action, kind: 'python:3' })
    await assert.rejects(ow.actions.invoke({ name: 'badzip', blocking: true }), err => {
      assert.equal(err.statusCode, 502)
      assert.equal(err.error.response.status, 'action developer error')
      assert.match(err.error.response.result.error, /^Initialization has failed/)
      return true
    })
    assert.deepEqual(await ow.actions.invoke({ name: 'pyzip', params: { x: 1 }, blocking: true, result: true }),
      { v: 2 })
  })
})

describe('/whisk.system/utils', () => {
  test('echo answers a user namespace, and the activation is the caller\'s', async () => {
    const rec = await ow.actions.invoke({ name: '/whisk.system/utils/echo', params: { a: 1 }, blocking: true })
    assert.deepEqual(rec.response.result, { a: 1 })
    assert.equal(rec.namespace, 'guest')
    const got = await ow.activations.get({ name: rec.activationId })
    assert.equal(got.activationId, rec.activationId)
  })

  test('a sequence of utils: split, sort', async () => {
    await ow.actions.create({ name: 'lines', sequence: ['/whisk.system/utils/split', '/whisk.system/utils/sort'] })
    const res = await ow.actions.invoke({ name: 'lines', params: { payload: 'pear\napple\nfig' }, blocking: true, result: true })
    assert.deepEqual(res.lines, ['apple', 'fig', 'pear'])
  })

  test('the package is listed and read, its code is not shown', async () => {
    const pkgs = await ow.packages.list({ namespace: 'whisk.system' })
    assert.ok(pkgs.some(p => p.name === 'utils'), JSON.stringify(pkgs))
    const a = await ow.actions.get({ name: '/whisk.system/utils/head' })
    assert.equal(a.name, 'head')
    assert.equal(a.exec.code, undefined)
  })
})

describe('sequences', () => {
  test('a missing component is 400 with OpenWhisk\'s message', async () => {
    await assert.rejects(ow.actions.create({ name: 'broken', sequence: ['/_/nope'] }), err => {
      assert.equal(err.statusCode, 400)
      assert.equal(err.error.error, 'Sequence component does not exist.')
      return true
    })
  })
})

describe('published packages across namespaces', () => {
  test('another namespace sees only what is published, and can bind and invoke it', async () => {
    await ow.packages.create({ name: 'shared', package: { publish: true, parameters: [{ key: 'site', value: 'a' }] } })
    await ow.packages.create({ name: 'private' })
    await ow.actions.create({ name: 'shared/read', action: 'function main(a) { return { site: a.site } }' })
    const listed = await other.packages.list({ namespace: 'guest' })
    assert.deepEqual(listed.map(p => p.name), ['shared'])
    await other.packages.create({ name: 'mine', package: { binding: { namespace: 'guest', name: 'shared' } } })
    assert.deepEqual(await other.actions.invoke({ name: 'mine/read', blocking: true, result: true }), { site: 'a' })
    await assert.rejects(other.packages.get({ name: '/guest/private' }), err => err.statusCode === 403)
    await assert.rejects(other.actions.list({ namespace: 'guest' }), err => err.statusCode === 403)
  })
})

describe('triggers with a feed of the user\'s', () => {
  test('deleting one tells its feed', async () => {
    await ow.actions.create({ name: 'myfeed', action: 'function main(a) { return { event: a.lifecycleEvent, trigger: a.triggerName } }' })
    await ow.triggers.create({ name: 'watched', trigger: { annotations: [{ key: 'feed', value: '/_/myfeed' }] } })
    await ow.triggers.delete({ name: 'watched' })
    const rec = await waitFor(async () => {
      const acts = await ow.activations.list({ name: 'myfeed', docs: true })
      return acts.find(x => x.response.result.event === 'DELETE')
    }, 'the feed\'s DELETE')
    assert.equal(rec.response.result.trigger, '/guest/watched')
  })
})

describe('the info document', () => {
  test('GET / is /api/v1\'s document', async () => {
    const root = await (await fetch(`${apihost}/`)).json()
    const v1 = await (await fetch(`${apihost}/api/v1`)).json()
    assert.deepEqual(root, v1)
    assert.ok(root.runtimes.python.some(k => k.kind === 'python:3'))
    assert.equal(typeof root.limits.sequence_length, 'number')
  })
})
