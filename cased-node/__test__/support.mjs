// Shared helpers of the node --test files (not a test file itself).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import assert from 'node:assert/strict'

/** The package entry point, for child processes and workers. */
export const INDEX = new URL('../index.js', import.meta.url).pathname

/** A key that must never show up anywhere but in the Authorization header. */
export const API_KEY = 'sk_test_9QyZ3vKp7mW2xL5n'

/**
 * Starts a real HTTP server on loopback. `respond(request, res, n)` answers the n-th request
 * (1-based) after its body was read; it may also never answer. Every request is recorded.
 */
export async function startApi(respond) {
  const requests = []
  const server = http.createServer(async (req, res) => {
    const chunks = []
    for await (const chunk of req) chunks.push(chunk)
    const request = {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
    }
    requests.push(request)
    server.emit('recorded', request)
    respond(request, res, requests.length)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    server,
    /** Resolves with the next request once its body has been read. */
    nextRequest: () => once(server, 'recorded').then(([request]) => request),
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** Answers with `status`, a JSON body (or none) and extra headers. */
export function reply(res, status, body, headers = {}) {
  const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(text)
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort() {
  const server = http.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

/** Runs `fn`, asserts it throws a cased error with `code`, and returns that error. */
export function catchCased(fn, code) {
  let caught
  assert.throws(fn, (e) => {
    caught = e
    return true
  })
  assertCasedError(caught, code)
  return caught
}

/** Asserts `promise` rejects with a cased error with `code`, and returns that error. */
export async function rejectsCased(promise, code) {
  let caught
  await assert.rejects(promise, (e) => {
    caught = e
    return true
  })
  assertCasedError(caught, code)
  return caught
}

function assertCasedError(e, code) {
  assert.ok(e instanceof Error, `expected an Error, got ${typeof e}`)
  assert.equal(e.code, code, `code of: ${e.message}`)
  assert.ok(Array.isArray(e.fields), 'fields is an array')
}

/** The field names of a validation error, in order. */
export const fieldNames = (e) => e.fields.map((f) => f.field)

/** The message of the field `name` of a validation error (asserts there is exactly one). */
export function fieldMessage(e, name) {
  const found = e.fields.filter((f) => f.field === name)
  assert.equal(found.length, 1, `one problem on ${name} in ${JSON.stringify(e.fields)}`)
  return found[0].message
}

/** Runs `source` as an ES module in a child node, returning the process and its collected output. */
export function child(source, env = {}) {
  const proc = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', source], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const output = { stdout: '', stderr: '' }
  proc.stdout.setEncoding('utf8').on('data', (d) => (output.stdout += d))
  proc.stderr.setEncoding('utf8').on('data', (d) => (output.stderr += d))
  const exited = once(proc, 'close').then(([code, signal]) => ({ code, signal, ...output }))
  return { proc, output, exited }
}
