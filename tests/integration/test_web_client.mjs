// Web actions through the real `openwhisk` npm client (pinned in
// package.json) and plain HTTP, against the real wispd. The client creates
// the actions, packages and bindings with their annotations (web-export,
// raw-http, final, require-whisk-auth, web-custom-options); the calls are
// what a browser or a device sends: fetch with no key. The client has no
// call that runs a web action (its only web code is routes.actionUrlPath,
// the URL it hands an API gateway), so that URL is used as it builds it.
// Records are read back through ow.activations, found by the
// x-openwhisk-activation-id header of each web reply.
//
// The expectations are OpenWhisk's (docs/webactions.md, docs/annotations.md
// and its controller's WebActions.scala), not whatever wispd does: an
// unknown extension is part of the action's name, the `error` of an
// application error is rendered by the extension like a result, reserved
// and final parameters are 400, preflights get CORS, a custom-options
// action answers OPTIONS itself (even when it requires auth).
//
// Run from tests/integration after `npm ci`:
//   WISPD=../../build/core/wispd node --test test_web_client.mjs
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { KEY, Wispd, waitFor } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const BODY_KB = 64 // the daemon's --max-body-kb here: bodies over it are 413
const KIND = 'nodejs:default' // whichever node this machine runs
const ID_RE = /^[0-9a-f]{32}$/
const BASIC = 'Basic ' + Buffer.from(KEY).toString('base64')
const BAD_BASIC = 'Basic ' + Buffer.from(KEY.replace(/.$/, c => (c === 'x' ? 'y' : 'x'))).toString('base64')
const CORS_METHODS = 'OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH'
const CORS_HEADERS = 'Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent'

// OpenWhisk's messages (common/.../http/ErrorResponse.scala)
const MSG = {
  notFound: 'The requested resource does not exist.',
  reserved: 'Request defines parameters that are not allowed (e.g., reserved properties).',
  unauthorized: 'The resource requires authentication, which was not supplied with the request.',
  noProperty: 'Response does not include requested property.',
  invalid: type => `Response is not valid '${type}'.`,
  unknownType: 'Response did not specify a known content-type.',
  typeMismatch: 'Response type in header did not match generated content type.',
  failed: 'There was an error processing your request.'
}

// An action that returns its parameters, and one that returns what its `r`
// parameter holds (JSON in the query), so one action renders any result.
const ECHO = 'function main (a) { return a }'
const SAY = 'function main (a) { return JSON.parse(a.r) }'
// .http with its parameters as the (JSON) body: the path after it is only __ow_path
const CONTEXT = 'function main (a) { return { body: a } }'
const HELLO = 'function main (a) { return { body: `<h1>hi ${a.name || "there"}</h1>` } }'
// raw-http: the bytes of the body come in as base64, go out reversed, as a
// binary type
const FLIP = `function main (a) {
  const bytes = Buffer.from(a.__ow_body, 'base64')
  return {
    headers: { 'Content-Type': 'application/octet-stream', 'X-In-Type': a.__ow_headers['content-type'],
               'X-In-Length': bytes.length, 'X-Query': a.__ow_query },
    body: Buffer.from(bytes).reverse().toString('base64')
  }
}`

let apihost
let ow
const daemon = new Wispd(['--max-body-kb', String(BODY_KB)])

// ---- helpers -------------------------------------------------------------------

const webUrl = path => `${apihost}/api/v1/web/guest/${path}`
const annotations = rec => Object.fromEntries(rec.annotations.map(a => [a.key, a.value]))

/** One web call as a browser or device makes it: no key unless given. */
async function web (path, { method = 'GET', headers = {}, body, redirect = 'manual' } = {}) {
  const res = await fetch(path.startsWith('http') ? path : webUrl(path), { method, headers, body, redirect })
  const bytes = Buffer.from(await res.arrayBuffer())
  return {
    status: res.status,
    headers: res.headers,
    type: res.headers.get('content-type'),
    bytes,
    text: bytes.toString('utf8'),
    json () { return JSON.parse(bytes.toString('utf8')) },
    id: res.headers.get('x-openwhisk-activation-id')
  }
}

/** A JSON body the way fetch sends one. */
const jsonBody = (v, method = 'POST') => ({ method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) })
/** The `say` action rendering `result` with extension ext (and a projection). */
const say = (ext, result, more = '') => `default/say${ext}${more}?r=${encodeURIComponent(JSON.stringify(result))}`

/** OpenWhisk's error document: exactly {error, code}. */
function assertError (res, status, message) {
  assert.equal(res.status, status, res.text)
  assert.match(res.type, /^application\/json/)
  const body = res.json()
  assert.deepEqual(Object.keys(body).sort(), ['code', 'error'], res.text)
  assert.equal(typeof body.code, 'string')
  if (message !== undefined) assert.equal(body.error, message)
  return body
}

/** The web action's own parameters: what it got, without the __ow_ context. */
const own = args => Object.fromEntries(Object.entries(args).filter(([k]) => !k.startsWith('__ow_')))

const webAction = (name, code, annotations = {}, params) =>
  ow.actions.create({ name, action: code, kind: KIND, params, annotations: { 'web-export': true, ...annotations } })

before(async () => {
  const port = await daemon.start()
  apihost = `http://127.0.0.1:${port}`
  ow = openwhisk({ apihost, api_key: KEY })
  await webAction('echo', ECHO)
  await webAction('say', SAY)
  await webAction('hello', HELLO)
  await webAction('context', CONTEXT)
})

after(() => daemon.stop())

// ---- tests ---------------------------------------------------------------------

describe('web-export', () => {
  test('an exported action answers at the client URL without a key; the record is the owner activation', async () => {
    assert.equal(annotations(await ow.actions.get('hello'))['web-export'], true)
    const url = ow.routes.actionUrlPath('hello', 'guest') // .../web/guest/default/hello.http
    assert.equal(url, webUrl('default/hello.http'))
    const r = await web(url + '?name=pi')
    assert.equal(r.status, 200, r.text)
    assert.equal(r.text, '<h1>hi pi</h1>')
    assert.match(r.type, /^text\/html/)
    // no extension is .http
    const plain = await web('default/hello')
    assert.equal(plain.text, '<h1>hi there</h1>')
    assert.match(r.id, ID_RE)
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.activationId, r.id)
    assert.equal(rec.name, 'hello')
    assert.equal(rec.namespace, 'guest')
    assert.equal(rec.subject, 'guest') // the owner pays, not the anonymous caller
    assert.equal(annotations(rec).path, 'guest/hello')
    assert.equal(rec.response.status, 'success')
    assert.equal(rec.response.result.body, '<h1>hi pi</h1>')
    const listed = await ow.activations.list({ name: 'hello' })
    assert.ok(listed.some(a => a.activationId === r.id), JSON.stringify(listed))
  })

  test('not exported, exported false, or missing: 404; web-export toggled by an update', async () => {
    await ow.actions.create({ name: 'hidden', action: ECHO, kind: KIND })
    assertError(await web('default/hidden.json'), 404, MSG.notFound)
    assertError(await web('default/hidden'), 404, MSG.notFound)
    await ow.actions.update({ name: 'hidden', action: ECHO, kind: KIND, annotations: { 'web-export': true } })
    assert.equal((await web('default/hidden.json')).status, 200)
    await ow.actions.update({ name: 'hidden', action: ECHO, kind: KIND, annotations: { 'web-export': false } })
    assertError(await web('default/hidden.json'), 404, MSG.notFound)
    assertError(await web('default/nope.json'), 404, MSG.notFound)
    assertError(await web('nopkg/echo.json'), 404, MSG.notFound)
    assertError(await web('default'), 404)
    // only the call made while it was exported ran
    assert.equal((await ow.activations.list({ name: 'hidden' })).length, 1)
  })

  test('an unknown extension is part of the name (OpenWhisk then assumes .http); dotted names work', async () => {
    // "echo.xml" is not an extension: it names an action that does not exist
    assertError(await web('default/echo.xml'), 404, MSG.notFound)
    assertError(await web('default/echo.xml/a'), 404, MSG.notFound)
    await webAction('v2.page', 'function main () { return { body: "dotted" } }')
    const r = await web('default/v2.page')
    assert.equal(r.status, 200, r.text)
    assert.equal(r.text, 'dotted')
    assert.deepEqual((await web('default/v2.page.json')).json(), { body: 'dotted' })
    assert.equal((await web('default/v2.page.text')).text, 'dotted')
  })
})

describe('extensions', () => {
  test('.json, .html, .svg and .text: their content types, from body or their own member', async () => {
    let r = await web(say('.json', { a: 1, b: [true, null] }))
    assert.equal(r.status, 200, r.text)
    assert.match(r.type, /^application\/json/)
    assert.deepEqual(r.json(), { a: 1, b: [true, null] })
    r = await web(say('.html', { html: '<p>x</p>' }))
    assert.equal(r.type, 'text/html; charset=UTF-8')
    assert.equal(r.text, '<p>x</p>')
    assert.equal((await web(say('.html', { body: '<b>b</b>', html: 'not this' }))).text, '<b>b</b>')
    r = await web(say('.svg', { svg: '<svg><circle r="3"/></svg>' }))
    assert.equal(r.status, 200, r.text)
    assert.match(r.type, /^image\/svg\+xml/)
    assert.equal(r.text, '<svg><circle r="3"/></svg>')
    r = await web(say('.text', { text: 'plain' }))
    assert.equal(r.type, 'text/plain; charset=UTF-8')
    assert.equal(r.text, 'plain')
    assert.equal((await web(say('.text', { body: 'from body' }))).text, 'from body')
  })

  test('each extension renders what does not fit it as OpenWhisk does', async () => {
    assertError(await web(say('.html', { text: 'no html here' })), 400, MSG.invalid('text/html'))
    assertError(await web(say('.html', { html: 5 })), 400, MSG.invalid('text/html'))
    assertError(await web(say('.svg', { html: '<p/>' })), 400, MSG.invalid('image/svg+xml'))
    // .text renders any JSON value; a missing one is 404
    for (const [v, want] of [[42, '42'], [true, 'true'], [null, 'null'], ['s', 's']]) {
      const r = await web(say('.text', { text: v }))
      assert.equal(r.status, 200, r.text)
      assert.equal(r.text, want)
    }
    const obj = await web(say('.text', { text: { a: [1, 2] } }))
    assert.deepEqual(JSON.parse(obj.text), { a: [1, 2] })
    assertError(await web(say('.text', { other: 1 })), 404, MSG.noProperty)
  })

  test('projections: .json/.text/.html take the member a path names; into nothing is 404; .http never projects', async () => {
    // (wispd's router takes 8 path segments: /api/v1/web/ns/pkg/action and two more)
    const res = { a: { b: { c: 1 }, c: 2, s: 'str' }, s: 'top', page: { html: '<i>p</i>' } }
    let r = await web(say('.json', res, '/a/b'))
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json(), { c: 1 })
    assert.deepEqual((await web(say('.json', res, '/'))).json(), res) // a trailing slash: all of it
    assert.equal((await web(say('.text', res, '/a/c'))).text, '2')
    assert.equal((await web(say('.text', res, '/s/'))).text, 'top')
    assert.equal((await web(say('.html', res, '/page'))).text, '<i>p</i>')
    // into nothing
    assertError(await web(say('.json', res, '/no/such')), 404, MSG.noProperty)
    assertError(await web(say('.text', res, '/s/x')), 404, MSG.noProperty)
    // .json of something that is no object or array
    assertError(await web(say('.json', res, '/a/s')), 400, MSG.invalid('application/json'))
    // .http: the path is only __ow_path
    r = await web(say('.http', { statusCode: 202, body: 'whole' }, '/a/b'))
    assert.equal(r.status, 202, r.text)
    assert.equal(r.text, 'whole')
    const args = (await web('default/context/x/y')).json()
    assert.equal(args.__ow_path, '/x/y')
  })
})

describe('.http results', () => {
  test('redirects: the status and Location, and a browser follows them', async () => {
    const to = { statusCode: 302, headers: { Location: '/api/v1/web/guest/default/hello?name=again' } }
    const r = await web(say('', to))
    assert.equal(r.status, 302, r.text)
    assert.equal(r.headers.get('location'), to.headers.Location)
    const followed = await web(say('', to), { redirect: 'follow' })
    assert.equal(followed.status, 200)
    assert.equal(followed.text, '<h1>hi again</h1>')
    const perm = await web(say('.http', { statusCode: 301, headers: { location: 'http://example.invalid/' } }))
    assert.equal(perm.status, 301)
    assert.equal(perm.headers.get('location'), 'http://example.invalid/')
  })

  test('headers: numbers, booleans, several cookies; a header that is no value is refused', async () => {
    const r = await web(say('', {
      headers: { 'Set-Cookie': ['UserID=Jane; Max-Age=3600', 'SessionID=asdf; Path=/'], 'X-N': 3, 'X-B': true },
      body: 'ok'
    }))
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.headers.getSetCookie(), ['UserID=Jane; Max-Age=3600', 'SessionID=asdf; Path=/'])
    assert.equal(r.headers.get('x-n'), '3')
    assert.equal(r.headers.get('x-b'), 'true')
    assertError(await web(say('', { headers: { 'X-Null': null }, body: 'x' })), 400, MSG.invalid('message/http'))
    assertError(await web(say('', { headers: 'text/html', body: 'x' })), 400, MSG.invalid('message/http'))
  })

  test('status codes: a number or numeric string; 204 without a body; bad ones refused', async () => {
    let r = await web(say('', { statusCode: '201', body: 'made' }))
    assert.equal(r.status, 201, r.text)
    assert.equal(r.text, 'made')
    for (const empty of [{}, { body: '' }, { body: null }]) {
      r = await web(say('', empty))
      assert.equal(r.status, 204, JSON.stringify(empty))
      assert.equal(r.bytes.length, 0)
    }
    // without a body any Content-Type is dropped
    r = await web(say('', { statusCode: 200, headers: { 'Content-Type': 'application/json', 'X-Kept': 'y' } }))
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-kept'), 'y')
    assert.equal(r.bytes.length, 0)
    for (const bad of [{ statusCode: 'xyz' }, { statusCode: true }, { statusCode: 99 }, { statusCode: 600 }]) {
      assertError(await web(say('', bad)), 400, MSG.invalid('message/http'))
    }
    // a result that is not an object cannot be an HTTP response
    assertError(await web(say('', { error: 'as a string' })), 400, MSG.invalid('message/http'))
  })

  test('bodies: JSON values as JSON, strings as text/html, base64 for binary types and legacy JSON', async () => {
    let r = await web(say('', { body: { field: 'value' } }))
    assert.equal(r.status, 200, r.text)
    assert.match(r.type, /^application\/json/)
    assert.deepEqual(r.json(), { field: 'value' })
    assert.deepEqual((await web(say('', { body: [1, 'two'] }))).json(), [1, 'two'])
    assert.equal((await web(say('', { body: 3 }))).json(), 3)
    r = await web(say('', { headers: { 'Content-Type': 'application/hal+json' }, body: { a: 1 } }))
    assert.equal(r.type.split(';')[0], 'application/hal+json')
    assert.deepEqual(r.json(), { a: 1 })
    assertError(await web(say('', { headers: { 'Content-Type': 'text/html' }, body: { a: 1 } })), 400, MSG.typeMismatch)
    r = await web(say('', { body: '{"field":"value"}' })) // a string stays a string: text/html
    assert.match(r.type, /^text\/html/)
    assert.equal(r.text, '{"field":"value"}')
    // the documented application/json example: the body as base64
    const b64 = Buffer.from(JSON.stringify({ x: 1 })).toString('base64')
    r = await web(say('', { statusCode: 200, headers: { 'Content-Type': 'application/json' }, body: b64 }))
    assert.match(r.type, /^application\/json/)
    assert.deepEqual(r.json(), { x: 1 })
    r = await web(say('', { headers: { 'Content-Type': 'application/json' }, body: 'hello world' }))
    assert.equal(r.text, 'hello world')
    r = await web(say('', { headers: { 'Content-Type': 'text/plain' }, body: 'aGk=' })) // text is never decoded
    assert.equal(r.text, 'aGk=')
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0xff, 0xfe, 7])
    r = await web(say('', { headers: { 'Content-Type': 'image/png' }, body: png.toString('base64') }))
    assert.equal(r.type, 'image/png')
    assert.ok(r.bytes.equals(png), r.bytes.toString('hex'))
    assertError(await web(say('', { headers: { 'Content-Type': 'image/png' }, body: 'not base64!' })), 400, MSG.typeMismatch)
    assertError(await web(say('', { headers: { 'Content-Type': 'xyzbar' }, body: 'x' })), 400, MSG.unknownType)
  })
})

describe('errors and failures', () => {
  test("an application error's `error` is rendered by the extension; the projection is ignored", async () => {
    const obj = { error: { statusCode: 409, headers: { 'X-Why': 'taken' }, body: 'name taken' } }
    let r = await web(say('', obj))
    assert.equal(r.status, 409, r.text)
    assert.equal(r.text, 'name taken')
    assert.equal(r.headers.get('x-why'), 'taken')
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.response.status, 'application error')
    assert.equal(rec.response.success, false)
    assert.deepEqual(rec.response.result, obj)
    r = await web(say('.json', obj, '/ignored'))
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(r.json(), obj.error)
    const str = { error: 'nope' }
    assertError(await web(say('.json', str)), 400, MSG.invalid('application/json'))
    assertError(await web(say('.json', str, '/error')), 400, MSG.invalid('application/json'))
    assertError(await web(say('.http', str)), 400, MSG.invalid('message/http'))
    r = await web(say('.text', str))
    assert.equal(r.status, 200, r.text)
    assert.equal(r.text, 'nope')
    r = await web(say('.html', str))
    assert.equal(r.type, 'text/html; charset=UTF-8')
    assert.equal(r.text, 'nope')
  })

  test('an action that fails to produce a result: 400, and its record says why', async () => {
    await webAction('crash', 'function main () { process.exit(3) }')
    for (const ext of ['', '.json', '.json/x', '.text']) {
      const r = await web('default/crash' + ext)
      assertError(r, 400, MSG.failed)
      assert.match(r.id, ID_RE)
      const rec = await ow.activations.get({ activationId: r.id })
      assert.equal(rec.response.status, 'action developer error')
    }
  })
})

describe('parameters', () => {
  test('precedence: package < binding < action < query < body', async () => {
    await ow.packages.create({ name: 'site', package: { parameters: ['p', 'a', 'q', 'b'].map(key => ({ key, value: 'package' })) } })
    await webAction('site/prec', ECHO, {}, { a: 'action', q: 'action', b: 'action' })
    let r = await web('site/prec.json?q=query&b=query', jsonBody({ b: 'body' }))
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(own(r.json()), { p: 'package', a: 'action', q: 'query', b: 'body' })
    r = await web('site/prec.json?q=query&b=query', { method: 'POST', body: new URLSearchParams({ b: 'form' }) })
    assert.deepEqual(own(r.json()), { p: 'package', a: 'action', q: 'query', b: 'form' })
    assert.deepEqual(own((await web('site/prec.json')).json()), { p: 'package', a: 'action', q: 'action', b: 'action' })
    // through a binding: its parameters over the package's; its annotations do not count
    await ow.packages.create({
      name: 'site_bound',
      annotations: { 'web-export': false },
      package: { binding: { namespace: 'guest', name: 'site' }, parameters: [{ key: 'p', value: 'binding' }, { key: 'a', value: 'binding' }] }
    })
    r = await web('site_bound/prec.json?q=query')
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(own(r.json()), { p: 'binding', a: 'action', q: 'query', b: 'action' })
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(annotations(rec).path, 'guest/site/prec')
    assertError(await web('site_bound/nothing.json'), 404, MSG.notFound)
  })

  test('form and other bodies: fields as parameters; anything else is __ow_body', async () => {
    let args = (await web('default/echo.json?who=query', { method: 'POST', body: new URLSearchParams({ who: 'form', n: '1', s: 'a b&c' }) })).json()
    assert.deepEqual(own(args), { who: 'form', n: '1', s: 'a b&c' })
    assert.match(args.__ow_headers['content-type'], /^application\/x-www-form-urlencoded/)
    args = (await web('default/echo.json', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'Jane' })).json()
    assert.equal(args.__ow_body, 'Jane')
    // a JSON value that is no object arrives as it is
    for (const v of [[1, 'str str', false], 'a string', true, 99, null]) {
      args = (await web('default/echo.json', jsonBody(v))).json()
      assert.deepEqual(args.__ow_body, v, JSON.stringify(args))
    }
    args = (await web('default/echo.json?a=b', jsonBody({}))).json()
    assert.deepEqual(own(args), { a: 'b' })
    assert.ok(!('__ow_body' in args))
    assertError(await web('default/echo.json', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"no' }), 400)
    // binary: base64, with a binary type or none at all
    const blob = Buffer.from([0xff, 0xfe, 0, 1, 2, 0x80])
    args = (await web('default/echo.json', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: blob })).json()
    assert.equal(args.__ow_body, blob.toString('base64'))
    args = (await web('default/echo.json', { method: 'POST', body: blob })).json()
    assert.equal(args.__ow_body, blob.toString('base64'))
  })

  test('reserved __ow_ names in a query or body: 400; the context is always there', async () => {
    for (const p of ['__ow_method', '__ow_headers', '__ow_path', '__ow_user', '__ow_query', '__ow_body']) {
      assertError(await web(`default/echo.json?${p}=x`), 400, MSG.reserved)
      assertError(await web('default/echo.json', jsonBody({ [p]: 'x' })), 400, MSG.reserved)
      assertError(await web('default/echo.json', { method: 'POST', body: new URLSearchParams({ [p]: 'x' }) }), 400, MSG.reserved)
    }
    const args = (await web('default/context.http/deep/er?x=1', { headers: { 'X-Device': 'pump-7' } })).json()
    assert.equal(args.__ow_method, 'get')
    assert.equal(args.__ow_path, '/deep/er')
    assert.equal(args.__ow_headers['x-device'], 'pump-7')
    assert.ok(!('__ow_user' in args) && !('__ow_query' in args) && !('__ow_body' in args), JSON.stringify(args))
  })

  test('final: no query, body or form may override a parameter of the action or its package', async () => {
    await ow.packages.create({ name: 'locked', package: { parameters: [{ key: 'site', value: 'north' }] } })
    await webAction('locked/fin', ECHO, { final: true }, { fixed: 'p' })
    assertError(await web('locked/fin.json?fixed=over'), 400, MSG.reserved)
    assertError(await web('locked/fin.json?site=south'), 400, MSG.reserved)
    assertError(await web('locked/fin.json', jsonBody({ fixed: 'over' })), 400, MSG.reserved)
    assertError(await web('locked/fin.json', { method: 'POST', body: new URLSearchParams({ fixed: 'over' }) }), 400, MSG.reserved)
    const r = await web('locked/fin.json?other=1')
    assert.equal(r.status, 200, r.text)
    assert.deepEqual(own(r.json()), { site: 'north', fixed: 'p', other: '1' })
    // without final the request wins
    await webAction('locked/open', ECHO, {}, { fixed: 'p' })
    assert.equal((await web('locked/open.json?fixed=over')).json().fixed, 'over')
    // raw-http takes nothing from the request as parameters: nothing to override
    await webAction('locked/rawfin', ECHO, { final: true, 'raw-http': true }, { fixed: 'p' })
    const raw = (await web('locked/rawfin.json?fixed=over', jsonBody({ fixed: 'body' }))).json()
    assert.equal(raw.fixed, 'p')
    assert.equal(raw.__ow_query, 'fixed=over')
  })
})

describe('raw-http and binary bodies', () => {
  test('a binary body round trip: __ow_body base64 in, a base64 body of a binary type out, bytes exact', async () => {
    await webAction('flip', FLIP, { 'raw-http': true })
    const input = Buffer.alloc(256 + 3000)
    for (let i = 0; i < input.length; i++) input[i] = i < 256 ? 255 - i : (i * 7 + (i >> 5)) & 0xff
    const r = await web('default/flip?k=v&k=w', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: input })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.type, 'application/octet-stream')
    assert.equal(r.headers.get('x-in-type'), 'image/png')
    assert.equal(r.headers.get('x-in-length'), String(input.length))
    assert.equal(r.headers.get('x-query'), 'k=v&k=w')
    const want = Buffer.from(input).reverse()
    assert.equal(r.bytes.length, want.length)
    assert.ok(r.bytes.equals(want), 'the bytes came back changed')
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.response.result.body, want.toString('base64'))
  })

  test('raw-http: __ow_query and __ow_body as they came (JSON as base64, text as text, none as "")', async () => {
    await webAction('raw', ECHO, { 'raw-http': true })
    let args = (await web('default/raw.json?a=1&b=2', jsonBody({ x: 1 }))).json()
    assert.equal(args.__ow_query, 'a=1&b=2')
    assert.equal(Buffer.from(args.__ow_body, 'base64').toString(), '{"x":1}')
    assert.deepEqual(own(args), {})
    args = (await web('default/raw.json', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hello' })).json()
    assert.equal(args.__ow_body, 'hello')
    args = (await web('default/raw.json', { method: 'POST', body: new URLSearchParams({ a: '1' }) })).json()
    assert.equal(args.__ow_body, 'a=1')
    assert.ok(!('a' in args))
    args = (await web('default/raw.json', { method: 'POST' })).json()
    assert.equal(args.__ow_body, '')
    assert.equal(args.__ow_query, '')
    // raw: names that would be reserved are only text in __ow_query
    args = (await web('default/raw.json?__ow_user=root')).json()
    assert.equal(args.__ow_query, '__ow_user=root')
    assert.ok(!('__ow_user' in args))
  })
})

describe('methods and CORS', () => {
  test('GET, POST, PUT, PATCH and DELETE reach the action as __ow_method', async () => {
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const r = await web('default/echo.json', m === 'GET' ? {} : jsonBody({ sent: m }, m))
      assert.equal(r.status, 200, `${m}: ${r.text}`)
      const args = r.json()
      assert.equal(args.__ow_method, m.toLowerCase())
      if (m !== 'GET') assert.equal(args.sent, m)
    }
  })

  test('HEAD runs the action: its status and headers, no body', async () => {
    await webAction('headed', 'function main (a) { return { statusCode: 200, headers: { "X-Method": a.__ow_method }, body: "hello" } }')
    const r = await web('default/headed', { method: 'HEAD' })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('x-method'), 'head')
    assert.equal(r.bytes.length, 0)
    assert.equal(r.headers.get('content-length'), '5') // what a GET would send
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.name, 'headed')
  })

  test('OPTIONS answers CORS without running the action; every reply carries CORS', async () => {
    await webAction('preflight', ECHO)
    let r = await web('default/preflight', { method: 'OPTIONS' })
    assert.equal(r.status, 200)
    assert.equal(r.bytes.length, 0)
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    assert.equal(r.headers.get('access-control-allow-methods'), CORS_METHODS)
    assert.equal(r.headers.get('access-control-allow-headers'), CORS_HEADERS)
    r = await web('default/preflight.json', { method: 'OPTIONS', headers: { 'Access-Control-Request-Headers': 'x-custom-header' } })
    assert.equal(r.headers.get('access-control-allow-headers'), 'x-custom-header')
    assert.deepEqual(await ow.activations.list({ name: 'preflight' }), [])
    r = await web('default/preflight.json', { headers: { Origin: 'http://elsewhere.example' } })
    assert.equal(r.status, 200)
    assert.equal(r.headers.get('access-control-allow-origin'), '*')
    assert.equal(r.headers.get('access-control-allow-methods'), CORS_METHODS)
    await waitFor(async () => (await ow.activations.list({ name: 'preflight' })).length === 1, 'the GET activation')
  })

  test('web-custom-options: the action answers OPTIONS itself (its headers only), even when it requires auth', async () => {
    await webAction('custom', 'function main (a) { return { statusCode: 200, headers: { "Access-Control-Allow-Methods": "OPTIONS, GET, PATCH", "X-Method": a.__ow_method } } }',
      { 'web-custom-options': true, 'require-whisk-auth': 's3cret' })
    const r = await web('default/custom', { method: 'OPTIONS', headers: { 'Access-Control-Request-Headers': 'x-custom-header' } })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.headers.get('x-method'), 'options')
    assert.equal(r.headers.get('access-control-allow-methods'), 'OPTIONS, GET, PATCH')
    assert.equal(r.headers.get('access-control-allow-origin'), null)
    assert.equal(r.headers.get('access-control-allow-headers'), null)
    assert.equal((await ow.activations.get({ activationId: r.id })).name, 'custom')
    // other methods still need the secret
    assertError(await web('default/custom'), 401, MSG.unauthorized)
    const ok = await web('default/custom', { headers: { 'X-Require-Whisk-Auth': 's3cret' } })
    assert.equal(ok.headers.get('x-method'), 'get')
    assert.equal(ok.headers.get('access-control-allow-origin'), null)
  })
})

describe('require-whisk-auth', () => {
  test('a string or number wants X-Require-Whisk-Auth to match', async () => {
    await webAction('sec', ECHO, { 'require-whisk-auth': 's3cret' })
    const none = assertError(await web('default/sec.json'), 401, MSG.unauthorized)
    assert.ok(none.code)
    assertError(await web('default/sec.json', { headers: { 'X-Require-Whisk-Auth': 'S3CRET' } }), 401, MSG.unauthorized)
    assertError(await web('default/sec.json', { headers: { Authorization: BASIC } }), 401, MSG.unauthorized)
    let r = await web('default/sec.json', { headers: { 'X-Require-Whisk-Auth': 's3cret' } })
    assert.equal(r.status, 200, r.text)
    assert.ok(!('__ow_user' in r.json()))
    // with a valid key as well, the caller is known
    r = await web('default/sec.json', { headers: { 'X-Require-Whisk-Auth': 's3cret', Authorization: BASIC } })
    assert.equal(r.json().__ow_user, 'guest')
    await webAction('num', ECHO, { 'require-whisk-auth': 4711 })
    assertError(await web('default/num.json', { headers: { 'X-Require-Whisk-Auth': '4712' } }), 401, MSG.unauthorized)
    assert.equal((await web('default/num.json', { headers: { 'X-Require-Whisk-Auth': '4711' } })).status, 200)
    // refused requests run nothing
    assert.equal((await ow.activations.list({ name: 'sec' })).length, 2)
  })

  test('true wants a valid key; the action gets __ow_user', async () => {
    await webAction('keyed', ECHO, { 'require-whisk-auth': true })
    assertError(await web('default/keyed.json'), 401, MSG.unauthorized)
    assertError(await web('default/keyed.json', { headers: { Authorization: BAD_BASIC } }), 401, MSG.unauthorized)
    const r = await web('default/keyed.json', { headers: { Authorization: BASIC } })
    assert.equal(r.status, 200, r.text)
    assert.equal(r.json().__ow_user, 'guest')
    assert.equal(r.json().__ow_headers.authorization, BASIC)
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.subject, 'guest')
    // an exported action without the annotation ignores the key
    assert.ok(!('__ow_user' in (await web('default/echo.json', { headers: { Authorization: BASIC } })).json()))
  })
})

describe('limits', () => {
  test(`a body over --max-body-kb (${BODY_KB}) is 413 and runs nothing`, async () => {
    await webAction('big', ECHO)
    const limit = BODY_KB * 1024
    const fits = JSON.stringify({ a: 'x'.repeat(limit - 16) })
    let r = await web('default/big.json', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: fits })
    assert.equal(r.status, 200, r.text.slice(0, 200))
    assert.equal(r.json().a.length, limit - 16)
    const over = JSON.stringify({ a: 'x'.repeat(limit) })
    r = await web('default/big.json', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: over })
    assertError(r, 413, `Request larger than allowed: ${over.length} > ${limit} bytes.`)
    r = await web('default/big.json', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: Buffer.alloc(limit + 1, 7) })
    assertError(r, 413)
    assert.equal((await ow.activations.list({ name: 'big' })).length, 1)
  })
})

describe('sequences', () => {
  test('a web sequence of actions that are not exported; its record lists theirs', async () => {
    await ow.actions.create({ name: 'seq_one', action: 'function main (a) { return { n: Number(a.n) + 1 } }', kind: KIND })
    await ow.actions.create({ name: 'seq_two', action: 'function main (a) { return { headers: { "Content-Type": "text/plain" }, body: `n=${a.n * 10}` } }', kind: KIND })
    const made = await ow.actions.create({ name: 'seq', sequence: ['/guest/seq_one', '/_/seq_two'], annotations: { 'web-export': true } })
    assert.equal(made.exec.kind, 'sequence')
    const r = await web('default/seq?n=4')
    assert.equal(r.status, 200, r.text)
    assert.match(r.type, /^text\/plain/)
    assert.equal(r.text, 'n=50')
    assert.equal((await web('default/seq.json?n=1')).json().body, 'n=20')
    assertError(await web('default/seq_one.json'), 404, MSG.notFound)
    const rec = await ow.activations.get({ activationId: r.id })
    assert.equal(rec.name, 'seq')
    assert.equal(annotations(rec).kind, 'sequence')
    assert.equal(rec.logs.length, 2)
    const parts = await Promise.all(rec.logs.map(activationId => ow.activations.get({ activationId })))
    assert.deepEqual(parts.map(p => p.name), ['seq_one', 'seq_two'])
    assert.deepEqual(parts[0].response.result, { n: 5 })
  })
})
