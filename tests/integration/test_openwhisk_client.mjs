// Drives the real wispd with the real `openwhisk` npm client (pinned in
// package.json): create/get/list/update/delete of actions, packages,
// triggers and rules, as an OpenWhisk user would through the JS SDK.
// Invocation and trigger firing are not covered (not implemented yet).
//
// Run from tests/integration after `npm ci`:
//   WISPD=../../build/core/wispd node --test test_openwhisk_client.mjs
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { KEY, NODE_KIND, Wispd } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const WRONG_KEY = KEY.slice(0, -1) + (KEY.endsWith('x') ? 'y' : 'x')

const CODE1 = 'function main(args) { return args }'
const CODE2 = 'function main(args) { return { v: 2 } }'
const KIND = NODE_KIND // what nodejs:default resolves to: the installed node's
const DEFAULT_LIMITS = { timeout: 60000, memory: 256, logs: 10, concurrency: 1 }

let apihost
let ow
let t0
const daemon = new Wispd()
const startWispd = () => daemon.start()
const stopWispd = () => daemon.stop()

/** The promise rejects with the client's OpenWhiskError carrying an OpenWhisk error body. */
async function rejectsWith (promise, status, message) {
  await assert.rejects(promise, err => {
    assert.equal(err.name, 'OpenWhiskError', String(err && err.stack))
    assert.equal(err.statusCode, status, `${err.message}`)
    assert.equal(typeof err.error, 'object', `${err.message}`)
    assert.equal(typeof err.error.error, 'string', `${err.message}`)
    assert.equal(typeof err.error.code, 'string', `${err.message}`)
    if (message !== undefined) {
      assert.equal(err.error.error, message, err.message)
    }
    return true
  })
}

/** Strips `updated` after checking it is a plausible epoch-millisecond timestamp. */
function noUpdated (entity) {
  assert.equal(typeof entity.updated, 'number', JSON.stringify(entity))
  assert.ok(entity.updated >= t0 - 1000 && entity.updated <= Date.now() + 1000,
    `updated ${entity.updated} not near now`)
  const { updated, ...rest } = entity
  return rest
}

const names = list => list.map(e => e.name)

before(async () => {
  t0 = Date.now()
  const port = await startWispd()
  apihost = `http://127.0.0.1:${port}`
  // the client builds `${apihost}/api/v1/` and keeps an explicit http:// scheme
  ow = openwhisk({ apihost, api_key: KEY })
})

after(stopWispd)

describe('actions', () => {
  const hello = {
    namespace: 'guest',
    name: 'hello',
    version: '0.0.1',
    publish: false,
    exec: { kind: KIND, code: CODE1, binary: false },
    parameters: [{ key: 'greeting', value: 'hi' }, { key: 'n', value: 3 }],
    annotations: [{ key: 'web-export', value: true }, { key: 'exec', value: KIND }],
    limits: { timeout: 1000, memory: 128, logs: 10, concurrency: 1 }
  }

  test('create with code, params, annotations, limits (kind from the client default)', async () => {
    const a = await ow.actions.create({
      name: 'hello',
      action: CODE1,
      params: { greeting: 'hi', n: 3 },
      annotations: { 'web-export': true },
      limits: { timeout: 1000, memory: 128 }
    })
    assert.deepEqual(noUpdated(a), hello)
  })

  test('get returns the code and the resolved kind', async () => {
    const a = await ow.actions.get('hello')
    assert.deepEqual(noUpdated(a), hello)
    const nocode = await ow.actions.get({ name: 'hello', code: false })
    assert.deepEqual(nocode.exec, { kind: KIND, binary: false })
  })

  test('create without overwrite on an existing name is 409 and changes nothing', async () => {
    await rejectsWith(ow.actions.create({ name: 'hello', action: CODE2 }), 409,
      'Concurrent modification to resource detected.')
    const a = await ow.actions.get('hello')
    assert.equal(a.version, '0.0.1')
    assert.equal(a.exec.code, CODE1)
  })

  test('list contains it; limit, skip and count are honoured', async () => {
    await ow.actions.create({ name: 'other1', action: CODE1 })
    await ow.actions.create({ name: 'other2', action: CODE1, kind: KIND })
    const all = await ow.actions.list()
    assert.deepEqual(names(all).sort(), ['hello', 'other1', 'other2'])
    const h = all.find(a => a.name === 'hello')
    assert.deepEqual(noUpdated(h), {
      namespace: 'guest',
      name: 'hello',
      version: '0.0.1',
      publish: false,
      annotations: hello.annotations,
      limits: hello.limits,
      exec: { binary: false }
    })
    for (const a of all) {
      assert.ok(!('code' in a.exec), 'list must not carry code')
      assert.ok(!('parameters' in a), 'list must not carry parameters')
    }
    const first = await ow.actions.list({ limit: 1 })
    const rest = await ow.actions.list({ skip: 1 })
    assert.equal(first.length, 1)
    assert.equal(rest.length, 2)
    assert.deepEqual([...names(first), ...names(rest)], names(all))
    assert.deepEqual(names(await ow.actions.list({ skip: 1, limit: 1 })), [names(all)[1]])
    assert.deepEqual(await ow.actions.list({ count: true }), { actions: 3 })
    const other2 = await ow.actions.get('other2')
    assert.deepEqual(other2.limits, DEFAULT_LIMITS)
    assert.deepEqual(other2.parameters, [])
  })

  test('update overwrites: version 0.0.1 -> 0.0.2, new code stored, the rest kept', async () => {
    const u = await ow.actions.update({ name: 'hello', action: CODE2 })
    assert.deepEqual(noUpdated(u), { ...hello, version: '0.0.2', exec: { kind: KIND, code: CODE2, binary: false } })
    const g = await ow.actions.get('hello')
    assert.deepEqual(g, u)
    const u2 = await ow.actions.update({ name: 'hello', action: CODE2, params: { only: true } })
    assert.equal(u2.version, '0.0.3')
    assert.deepEqual(u2.parameters, [{ key: 'only', value: true }])
  })

  test('delete returns the action, then get and delete are 404', async () => {
    const d = await ow.actions.delete('hello')
    assert.equal(d.name, 'hello')
    assert.equal(d.namespace, 'guest')
    assert.equal(d.version, '0.0.3')
    await rejectsWith(ow.actions.get('hello'), 404, 'The requested resource does not exist.')
    await rejectsWith(ow.actions.delete('hello'), 404, 'The requested resource does not exist.')
    await ow.actions.delete(['other1', 'other2'])
    assert.deepEqual(await ow.actions.list(), [])
  })
})

describe('packages', () => {
  test('create with parameters, get, list', async () => {
    const p = await ow.packages.create({
      name: 'pkg',
      package: { parameters: [{ key: 'site', value: 'a' }, { key: 'shared', value: 'pkg' }] },
      annotations: { description: 'test package' }
    })
    const pkg = {
      namespace: 'guest',
      name: 'pkg',
      version: '0.0.1',
      publish: false,
      binding: {},
      parameters: [{ key: 'site', value: 'a' }, { key: 'shared', value: 'pkg' }],
      annotations: [{ key: 'description', value: 'test package' }]
    }
    assert.deepEqual(noUpdated(p), pkg)
    const g = await ow.packages.get('pkg')
    assert.deepEqual(noUpdated(g), { ...pkg, actions: [], feeds: [] })
    const l = await ow.packages.list()
    assert.equal(l.length, 1)
    const { binding, ...summary } = noUpdated(l[0])
    assert.deepEqual(summary, {
      namespace: 'guest',
      name: 'pkg',
      version: '0.0.1',
      publish: false,
      annotations: pkg.annotations
    })
  })

  test('list says binding: false for a plain package', async () => {
    // OpenWhisk's `packages` view: binding = doc.binding if non-empty, else false
    const l = await ow.packages.list()
    assert.deepEqual(l.map(x => [x.name, x.binding]), [['pkg', false]])
  })

  test('update bumps the version and replaces parameters', async () => {
    const u = await ow.packages.update({ name: 'pkg', package: { parameters: [{ key: 'site', value: 'b' }, { key: 'shared', value: 'pkg' }] } })
    assert.equal(u.version, '0.0.2')
    assert.deepEqual(u.parameters, [{ key: 'site', value: 'b' }, { key: 'shared', value: 'pkg' }])
    assert.deepEqual(u.annotations, [{ key: 'description', value: 'test package' }])
    assert.deepEqual((await ow.packages.get('pkg')).parameters, u.parameters)
    await rejectsWith(ow.packages.create({ name: 'pkg' }), 409, 'Concurrent modification to resource detected.')
  })

  test('packaged actions: create, get, listed in the package', async () => {
    const a = await ow.actions.create({ name: 'pkg/inner', action: CODE1 })
    assert.deepEqual(noUpdated(a), {
      namespace: 'guest/pkg',
      name: 'inner',
      version: '0.0.1',
      publish: false,
      exec: { kind: KIND, code: CODE1, binary: false },
      parameters: [],
      annotations: [{ key: 'exec', value: KIND }],
      limits: DEFAULT_LIMITS
    })
    await ow.actions.create({ name: 'pkg/inner2', action: CODE1 })
    const g = await ow.actions.get('pkg/inner')
    assert.equal(g.namespace, 'guest/pkg')
    assert.equal(g.exec.code, CODE1)
    const p = await ow.packages.get('pkg')
    assert.deepEqual(p.actions.map(x => x.name).sort(), ['inner', 'inner2'])
    assert.deepEqual(p.actions.find(x => x.name === 'inner'),
      { name: 'inner', version: '0.0.1', annotations: [{ key: 'exec', value: KIND }] })
    assert.deepEqual(p.feeds, [])
  })

  test('actions.list of the namespace includes packaged actions', async () => {
    // OpenWhisk's `actions` view emits a packaged action under its package
    // path and under the root namespace, so GET namespaces/_/actions lists
    // it too (with namespace guest/pkg), as `wsk action list` shows.
    const all = await ow.actions.list()
    assert.deepEqual(all.map(x => `${x.namespace}/${x.name}`).sort(), ['guest/pkg/inner', 'guest/pkg/inner2'])
    assert.deepEqual(await ow.actions.list({ count: true }), { actions: 2 })
  })

  test('a binding: create, get shows the bound package\'s actions, list', async () => {
    const b = await ow.packages.create({
      name: 'bnd',
      package: { binding: { namespace: 'guest', name: 'pkg' }, parameters: [{ key: 'shared', value: 'bnd' }] }
    })
    const { annotations, ...rest } = noUpdated(b)
    assert.deepEqual(rest, {
      namespace: 'guest',
      name: 'bnd',
      version: '0.0.1',
      publish: false,
      binding: { namespace: 'guest', name: 'pkg' },
      parameters: [{ key: 'shared', value: 'bnd' }]
    })
    const g = await ow.packages.get('bnd')
    assert.equal(g.name, 'bnd')
    assert.equal(g.namespace, 'guest')
    assert.equal(g.version, '0.0.1')
    assert.deepEqual(g.binding, { namespace: 'guest', name: 'pkg' })
    assert.deepEqual(g.actions.map(x => x.name).sort(), ['inner', 'inner2'])
    assert.deepEqual(g.feeds, [])
    const l = await ow.packages.list()
    assert.deepEqual(names(l).sort(), ['bnd', 'pkg'])
    assert.deepEqual(l.find(x => x.name === 'bnd').binding, { namespace: 'guest', name: 'pkg' })
    assert.deepEqual(await ow.packages.list({ count: true }), { packages: 2 })
    assert.equal((await ow.packages.list({ limit: 1 })).length, 1)
    assert.equal((await ow.packages.list({ skip: 1 })).length, 1)
  })

  test('a binding carries the controller-set `binding` annotation', async () => {
    // Packages.scala create/update: annotations - "binding" ++ bindingAnnotation(binding)
    const want = [{ key: 'binding', value: { namespace: 'guest', name: 'pkg' } }]
    assert.deepEqual((await ow.packages.get('bnd')).annotations, want)
    assert.deepEqual((await ow.packages.list()).find(x => x.name === 'bnd').annotations, want)
  })

  test('GET on a binding merges the bound package\'s parameters', async () => {
    // Packages.scala mergePackageWithBinding: binding inherit package.parameters
    // (the package's parameters, overridden by the binding's own)
    const g = await ow.packages.get('bnd')
    const params = Object.fromEntries(g.parameters.map(p => [p.key, p.value]))
    assert.deepEqual(params, { site: 'b', shared: 'bnd' })
  })

  test('delete: packaged action, binding, non-empty package (409 unless force)', async () => {
    const d = await ow.actions.delete('pkg/inner')
    assert.equal(d.name, 'inner')
    assert.equal(d.namespace, 'guest/pkg')
    await rejectsWith(ow.actions.get('pkg/inner'), 404)
    assert.deepEqual((await ow.packages.get('pkg')).actions.map(x => x.name), ['inner2'])

    const db = await ow.packages.delete('bnd')
    assert.equal(db.name, 'bnd')
    await rejectsWith(ow.packages.get('bnd'), 404, 'The requested resource does not exist.')

    await assert.rejects(ow.packages.delete('pkg'), err => {
      assert.equal(err.statusCode, 409, err.message)
      assert.match(err.error.error, /^Package not empty \(contains 1 entity\)/)
      return true
    })
    assert.equal((await ow.actions.get('pkg/inner2')).name, 'inner2')
    const dp = await ow.packages.delete({ name: 'pkg', qs: { force: true } })
    assert.equal(dp.name, 'pkg')
    await rejectsWith(ow.actions.get('pkg/inner2'), 404)
    await rejectsWith(ow.packages.get('pkg'), 404)
    assert.deepEqual(await ow.packages.list(), [])
    assert.deepEqual(await ow.actions.list(), [])

    // an empty package deletes without force
    await ow.packages.create({ name: 'empty' })
    assert.equal((await ow.packages.delete('empty')).name, 'empty')
  })
})

describe('triggers and rules', () => {
  test('trigger create, get, list, update', async () => {
    const t = await ow.triggers.create({
      name: 'tick',
      trigger: { parameters: [{ key: 'k', value: 'v' }] },
      annotations: { note: 'x' }
    })
    const tick = {
      namespace: 'guest',
      name: 'tick',
      version: '0.0.1',
      publish: false,
      parameters: [{ key: 'k', value: 'v' }],
      annotations: [{ key: 'note', value: 'x' }],
      limits: {}
    }
    const { rules, ...created } = noUpdated(t)
    assert.deepEqual(created, tick)
    assert.ok(rules === undefined || Object.keys(rules).length === 0, JSON.stringify(rules))
    const { rules: r2, ...got } = noUpdated(await ow.triggers.get('tick'))
    assert.deepEqual(got, tick)
    await ow.triggers.create({ name: 'tock' })
    const l = await ow.triggers.list()
    assert.deepEqual(names(l).sort(), ['tick', 'tock'])
    assert.deepEqual(noUpdated(l.find(x => x.name === 'tick')), {
      namespace: 'guest', name: 'tick', version: '0.0.1', publish: false, annotations: tick.annotations
    })
    assert.equal((await ow.triggers.list({ limit: 1 })).length, 1)
    assert.equal((await ow.triggers.list({ skip: 1 })).length, 1)
    assert.deepEqual(await ow.triggers.list({ count: true }), { triggers: 2 })
    await rejectsWith(ow.triggers.create({ name: 'tick' }), 409, 'Concurrent modification to resource detected.')
    const u = await ow.triggers.update({ name: 'tock', trigger: { parameters: [{ key: 'p', value: 1 }] } })
    assert.equal(u.version, '0.0.2')
    assert.deepEqual(u.parameters, [{ key: 'p', value: 1 }])
    assert.deepEqual((await ow.triggers.get('tock')).parameters, [{ key: 'p', value: 1 }])
  })

  test('the client sends rule trigger/action fully qualified', () => {
    assert.deepEqual(ow.rules.ruleBody({ trigger: 'tick', action: 'act' }),
      { trigger: '/_/tick', action: '/_/act' })
  })

  test('rule create, get, list; trigger shows the rule', async () => {
    await ow.actions.create({ name: 'act', action: CODE1 })
    const r = await ow.rules.create({ name: 'rule1', trigger: 'tick', action: 'act' })
    const rule1 = {
      namespace: 'guest',
      name: 'rule1',
      version: '0.0.1',
      publish: false,
      annotations: [],
      status: 'active',
      trigger: { path: 'guest', name: 'tick' },
      action: { path: 'guest', name: 'act' }
    }
    assert.deepEqual(noUpdated(r), rule1)
    assert.deepEqual(noUpdated(await ow.rules.get('rule1')), rule1)
    const t = await ow.triggers.get('tick')
    assert.deepEqual(t.rules, { 'guest/rule1': { action: { path: 'guest', name: 'act' }, status: 'active' } })
    const l = await ow.rules.list()
    assert.deepEqual(names(l), ['rule1'])
    assert.equal(l[0].namespace, 'guest')
    assert.deepEqual(l[0].trigger, rule1.trigger)
    assert.deepEqual(l[0].action, rule1.action)
    assert.deepEqual(await ow.rules.list({ count: true }), { rules: 1 })
    await rejectsWith(ow.rules.create({ name: 'rule1', trigger: 'tick', action: 'act' }), 409,
      'Concurrent modification to resource detected.')
  })

  test('rule disable / enable change the status', async () => {
    await ow.rules.disable({ name: 'rule1' })
    assert.equal((await ow.rules.get('rule1')).status, 'inactive')
    assert.equal((await ow.triggers.get('tick')).rules['guest/rule1'].status, 'inactive')
    await ow.rules.enable({ name: 'rule1' })
    assert.equal((await ow.rules.get('rule1')).status, 'active')
    assert.equal((await ow.triggers.get('tick')).rules['guest/rule1'].status, 'active')
    // enabling an active rule is a no-op, not an error
    await ow.rules.enable({ name: 'rule1' })
    assert.equal((await ow.rules.get('rule1')).status, 'active')
  })

  test('rule update points it at another action and back', async () => {
    await ow.actions.create({ name: 'act2', action: CODE1 })
    const u = await ow.rules.update({ name: 'rule1', trigger: 'tick', action: 'act2' })
    assert.equal(u.version, '0.0.2')
    assert.deepEqual(u.action, { path: 'guest', name: 'act2' })
    assert.deepEqual((await ow.rules.get('rule1')).action, { path: 'guest', name: 'act2' })
    assert.deepEqual((await ow.triggers.get('tick')).rules,
      { 'guest/rule1': { action: { path: 'guest', name: 'act2' }, status: 'active' } })
    await rejectsWith(ow.rules.update({ name: 'rule1', trigger: 'tick', action: 'nope' }), 400)
    assert.equal((await ow.rules.get('rule1')).version, '0.0.2')
    const back = await ow.rules.update({ name: 'rule1', trigger: 'tick', action: 'act' })
    assert.equal(back.version, '0.0.3')
    assert.deepEqual((await ow.triggers.get('tick')).rules['guest/rule1'].action,
      { path: 'guest', name: 'act' })
    await ow.actions.delete('act2')
  })

  let deletedRule
  test('rule delete, then trigger delete', async () => {
    const d = deletedRule = await ow.rules.delete('rule1')
    assert.equal(d.name, 'rule1')
    assert.equal(d.namespace, 'guest')
    assert.deepEqual(d.trigger, { path: 'guest', name: 'tick' })
    assert.deepEqual(d.action, { path: 'guest', name: 'act' })
    await rejectsWith(ow.rules.get('rule1'), 404, 'The requested resource does not exist.')
    assert.deepEqual(await ow.rules.list(), [])
    const rules = (await ow.triggers.get('tick')).rules
    assert.ok(rules === undefined || Object.keys(rules).length === 0, JSON.stringify(rules))

    const dt = await ow.triggers.delete('tick')
    assert.equal(dt.name, 'tick')
    assert.deepEqual(dt.parameters, [{ key: 'k', value: 'v' }])
    await rejectsWith(ow.triggers.get('tick'), 404, 'The requested resource does not exist.')
    await rejectsWith(ow.triggers.delete('tick'), 404)
    await ow.triggers.delete('tock')
    await ow.actions.delete('act')
    assert.deepEqual(await ow.triggers.list(), [])
  })

  test('the deleted rule is answered with status inactive', () => {
    // Rules.scala remove: completeAsRuleResponse(rule, Status.INACTIVE)
    assert.ok(deletedRule, 'rule delete did not answer')
    assert.equal(deletedRule.status, 'inactive')
  })
})

describe('namespaces and auth', () => {
  test('namespaces.list is the guest namespace', async () => {
    assert.deepEqual(await ow.namespaces.list(), ['guest'])
  })

  test('a wrong api_key is rejected with 401', async () => {
    const bad = openwhisk({ apihost, api_key: WRONG_KEY })
    const msg = 'The supplied authentication is invalid.'
    await rejectsWith(bad.actions.list(), 401, msg)
    await rejectsWith(bad.namespaces.list(), 401, msg)
    await rejectsWith(bad.actions.create({ name: 'nope', action: CODE1 }), 401, msg)
    await rejectsWith(bad.packages.get('pkg'), 401, msg)
    await rejectsWith(ow.actions.get('nope'), 404)
  })
})
