// The node tests' harness: starts the real wispd on a free loopback port
// with a temporary data dir, and stops it by its own PID (SIGTERM, a
// deadline, then SIGKILL and a failure), checking the exit status and that
// its log holds no sanitizer report. The Python twin is harness.py.
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
export const WISPD = process.env.WISPD || resolve(here, '../../build/core/wispd')
export const KEY = '23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP'
// nodejs:MAJOR of the node the kinds manifest names (nodejs:18 on Debian 12,
// nodejs:20 where node 20 is installed): the kind wispd offers for
// nodejs:default. Asked of that node, not of wispd, so tests check wispd's
// answer (harness.py's NODE_KIND is its twin).
export const NODE_KIND = (() => {
  try {
    return 'nodejs:' + execFileSync('/usr/bin/node', ['-p', 'process.versions.node.split(".")[0]'],
      { encoding: 'utf8', timeout: 30000 }).trim()
  } catch (_) {
    return null
  }
})()
const SANITIZER_MARKS = ['AddressSanitizer', 'LeakSanitizer', 'runtime error:', 'UndefinedBehaviorSanitizer']
// under qemu-user (a cross build's tests) every deadline is this many times longer
const TIME_SCALE = Number(process.env.WISP_TEST_TIME_SCALE || 1)
const READY_TIMEOUT_MS = 20000 * TIME_SCALE
const STOP_TIMEOUT_MS = 30000 * TIME_SCALE

/** Polls fn (async) until it returns a truthy value or the deadline passes. */
export async function waitFor (fn, what, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs * TIME_SCALE
  let lastErr
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      lastErr = e
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  assert.fail(`timed out waiting for ${what}${lastErr ? ': ' + lastErr.message : ''}`)
}

/** Stops a child by its own PID: SIGTERM, then SIGKILL after timeoutMs.
 * exited resolves when it is gone; true when SIGTERM was enough. */
export async function stopProcess (proc, exited, timeoutMs) {
  process.kill(proc.pid, 'SIGTERM')
  let timer
  const late = new Promise(resolve => { timer = setTimeout(() => resolve(null), timeoutMs) })
  const res = await Promise.race([exited, late])
  clearTimeout(timer)
  if (res) return true
  process.kill(proc.pid, 'SIGKILL')
  await exited
  return false
}

export class Wispd {
  constructor (args = []) {
    this.args = args
    this.log = ''
    this.exited = null // {code, signal} once the process is gone
  }

  /** Resolves with the port of the ready line. */
  start () {
    this.dataDir = mkdtempSync(join(tmpdir(), 'wisp-js-'))
    const proc = this.proc = spawn(WISPD, ['--data', this.dataDir, '--listen', '127.0.0.1:0', ...this.args], {
      env: { ...process.env, WISP_GUEST_KEY: KEY },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    proc.stdout.setEncoding('utf8')
    proc.stderr.setEncoding('utf8')
    proc.stdout.on('data', () => {}) // keep the pipe drained
    this.exitedP = new Promise(resolve => proc.on('exit', (code, signal) => {
      this.exited = { code, signal }
      resolve(this.exited)
    }))
    return new Promise((resolve, reject) => {
      let done = false
      const finish = (err, port) => {
        if (done) return
        done = true
        clearTimeout(timer)
        err ? reject(err) : resolve(port)
      }
      const timer = setTimeout(() => finish(new Error(
        `wispd gave no ready line within ${READY_TIMEOUT_MS} ms; log:\n${this.log}`)), READY_TIMEOUT_MS)
      proc.on('error', e => finish(new Error(`cannot spawn ${WISPD}: ${e.message}`)))
      proc.stderr.on('data', chunk => {
        this.log += chunk
        const m = this.log.match(/^wispd: ready on https?:\/\/127\.0\.0\.1:(\d+)$/m) // https: --tls-cert
        if (m) finish(null, Number(m[1]))
      })
      this.exitedP.then(({ code, signal }) => finish(new Error(
        `wispd exited (code ${code}, signal ${signal}) before it was ready; log:\n${this.log}`)))
    })
  }

  async stop () {
    const proc = this.proc
    if (!proc) return
    try {
      if (proc.pid === undefined) return // never spawned; start() already failed
      if (!this.exited && !(await stopProcess(proc, this.exitedP, STOP_TIMEOUT_MS))) {
        assert.fail(`wispd did not stop within ${STOP_TIMEOUT_MS} ms after SIGTERM; log:\n${this.log}`)
      }
      // let the stderr pipe drain to EOF before inspecting the log
      if (!proc.stderr.readableEnded) await new Promise(resolve => proc.stderr.once('end', resolve))
      for (const mark of SANITIZER_MARKS) {
        assert.ok(!this.log.includes(mark), `sanitizer report (${mark}) in wispd log:\n${this.log}`)
      }
      assert.deepEqual(this.exited, { code: 0, signal: null }, `wispd exit status; log:\n${this.log}`)
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true })
    }
  }
}
