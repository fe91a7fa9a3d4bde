// The API over TLS through the real `openwhisk` npm client (pinned in
// package.json): wispd with --tls-cert/--tls-key and a certificate made at
// test time by the openssl CLI (a test CA; the server's certificate names
// 127.0.0.1 as a subjectAltName IP entry), apihost https://127.0.0.1:PORT.
// The client verifies with the test's own CA (an https.Agent carrying it,
// the client's `agent` option); without that CA it refuses the server;
// with ignore_certs (the client's switch) it takes it unverified.
//
// Run from tests/integration after `npm ci`:
//   WISPD=../../build/core/wispd node --test test_tls_client.mjs
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import https from 'node:https'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KEY, Wispd } from './wispd.mjs'

const require = createRequire(import.meta.url)
const openwhisk = require('openwhisk')

const ECHO = 'function main (a) { return { echo: a.msg, tls: true } }'

let dir
let ca
let apihost
const daemon = new Wispd()

/** A test CA and a certificate for 127.0.0.1 it signs (EC P-256); returns
 * the paths of the CA, the chain the server sends and its key. */
function makePki (d) {
  const openssl = (...args) => execFileSync('openssl', args, { cwd: d, stdio: 'pipe', timeout: 60000 })
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=wisp-test-ca', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
  openssl('req', ...key, '-keyout', 'srv.key', '-out', 'srv.csr', '-subj', '/CN=wisp-api')
  writeFileSync(join(d, 'srv.ext'), 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n')
  openssl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'srv.crt', '-days', '2', '-extfile', 'srv.ext')
  writeFileSync(join(d, 'chain.pem'), readFileSync(join(d, 'srv.crt'), 'utf8') + readFileSync(join(d, 'ca.pem'), 'utf8'))
  return { ca: join(d, 'ca.pem'), chain: join(d, 'chain.pem'), key: join(d, 'srv.key') }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wisp-tls-js-'))
  const pki = makePki(dir)
  ca = readFileSync(pki.ca)
  daemon.args = ['--tls-cert', pki.chain, '--tls-key', pki.key]
  const port = await daemon.start()
  assert.match(daemon.log, /^wispd: ready on https:\/\/127\.0\.0\.1:\d+$/m)
  apihost = `https://127.0.0.1:${port}`
})

after(async () => {
  try {
    await daemon.stop()
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true })
  }
})

test('node verifies the server against the test CA: the IP entry, TLS 1.2', async () => {
  const agent = new https.Agent({ ca })
  const sock = await new Promise((resolve, reject) => {
    https.get(`${apihost}/ping`, { agent }, res => {
      res.resume()
      res.on('end', () => resolve(res.socket))
    }).on('error', reject)
  })
  assert.equal(sock.authorized, true, String(sock.authorizationError))
  assert.equal(sock.getProtocol(), 'TLSv1.2')
  const peer = sock.getPeerCertificate(true)
  assert.equal(peer.subject.CN, 'wisp-api')
  assert.equal(peer.subjectaltname, 'IP Address:127.0.0.1')
  assert.equal(peer.issuerCertificate.subject.CN, 'wisp-test-ca')
  agent.destroy()
})

test('the openwhisk client with the test CA: create, invoke, list over https', async () => {
  const agent = new https.Agent({ ca })
  const ow = openwhisk({ apihost, api_key: KEY, agent })
  try {
    const a = await ow.actions.create({ name: 'tls-echo', action: ECHO, kind: 'nodejs:default' })
    assert.equal(a.name, 'tls-echo')
    const res = await ow.actions.invoke({ name: 'tls-echo', blocking: true, result: true, params: { msg: 'over tls' } })
    assert.deepEqual(res, { echo: 'over tls', tls: true })
    const list = await ow.actions.list()
    assert.ok(list.some(x => x.name === 'tls-echo'), JSON.stringify(list))
    const rec = await ow.actions.invoke({ name: 'tls-echo', blocking: true, params: { msg: 'again' } })
    const got = await ow.activations.get({ name: rec.activationId })
    assert.deepEqual(got.response.result, { echo: 'again', tls: true })
    assert.deepEqual(await ow.namespaces.list(), ['guest'])
  } finally {
    agent.destroy()
  }
})

test('without the test CA the openwhisk client refuses the server', async () => {
  const ow = openwhisk({ apihost, api_key: KEY })
  await assert.rejects(ow.actions.list(), err => {
    // node's reason, passed on by the client: our CA is in no bundle it knows
    assert.match(err.message, /self-signed certificate in certificate chain/)
    return true
  })
})

test('with ignore_certs the openwhisk client takes the server unverified', async () => {
  const ow = openwhisk({ apihost, api_key: KEY, ignore_certs: true })
  const list = await ow.actions.list()
  assert.ok(Array.isArray(list))
})
