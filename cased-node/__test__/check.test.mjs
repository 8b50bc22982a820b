import assert from 'node:assert/strict'
import { once } from 'node:events'
import { describe, test } from 'node:test'

import { runCheck } from '../index.js'
import { closedPort, fieldMessage, fieldNames, rejectsCased, reply, startApi } from './support.mjs'

/** A real HTTP server on loopback answering every request with `status`. */
async function target(t, status) {
  const server = await startApi((_, res) => reply(res, status, { ok: status < 400 }))
  t.after(() => server.close())
  return server
}

describe('runCheck against a real HTTP server', () => {
  test('passes on 200', async (t) => {
    const server = await target(t, 200)
    const outcome = await runCheck({ name: 'web', type: 'http', url: `${server.url}/health` })
    assert.equal(outcome.status, 'pass')
    assert.match(outcome.message, /^HTTP 200 in \d+ ms$/)
    assert.equal(typeof outcome.latency_ms, 'number')
    assert.ok(outcome.latency_ms >= 0)
    assert.equal(server.requests.length, 1)
    assert.equal(server.requests[0].method, 'GET')
    assert.equal(server.requests[0].url, '/health')
  })

  test('fails on 503, with the evidence', async (t) => {
    const server = await target(t, 503)
    const outcome = await runCheck({ name: 'web', type: 'http', url: server.url })
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.message, /^HTTP 503/)
    assert.equal(outcome.evidence.status, 503)
    assert.deepEqual(outcome.evidence.failures[0], { check: 'status', expected: ['2xx'], got: 503, body_excerpt: '{"ok":false}' })
  })

  test('the expected statuses and the method are the configured ones', async (t) => {
    const server = await target(t, 503)
    const outcome = await runCheck({
      name: 'maintenance',
      type: 'http',
      url: server.url,
      method: 'HEAD',
      expect: { status: [200, '5xx'] },
    })
    assert.equal(outcome.status, 'pass')
    assert.equal(server.requests[0].method, 'HEAD')
  })

  test('header values can come from the environment', async (t) => {
    const server = await target(t, 200)
    process.env.CASED_TEST_TOKEN = 'Bearer from-the-env'
    t.after(() => delete process.env.CASED_TEST_TOKEN)
    const config = { name: 'web', type: 'http', url: server.url, headers: { authorization: '${CASED_TEST_TOKEN}' } }
    const outcome = await runCheck(config)
    assert.equal(outcome.status, 'pass')
    assert.equal(server.requests[0].headers.authorization, 'Bearer from-the-env')
    delete process.env.CASED_TEST_TOKEN
    const e = await rejectsCased(runCheck(config), 'validation')
    assert.deepEqual(fieldNames(e), ['headers.authorization'])
    assert.match(fieldMessage(e, 'headers.authorization'), /CASED_TEST_TOKEN, which is not set/)
  })

  test('a closed port is a failed outcome, never a rejection', async () => {
    const port = await closedPort()
    const outcome = await runCheck({ name: 'web', type: 'http', url: `http://127.0.0.1:${port}/`, timeout: '2s' })
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.message, /connection refused/)
  })
})

describe('configuration limits', () => {
  test('too many checks, bad names and huge keys are refused naming the key', async () => {
    const { Monitor } = await import('../index.js')
    const { catchCased, fieldNames } = await import('./support.mjs')
    const many = Array.from({ length: 1001 }, (_, i) => ({ name: `c${i}`, type: 'tcp', host: '127.0.0.1', port: 1 }))
    let e = catchCased(() => new Monitor({ checks: many }), 'validation')
    assert.deepEqual(fieldNames(e), ['checks'])
    for (const bad of ['a\0b', 'n'.repeat(257)]) {
      e = catchCased(() => new Monitor({ checks: [{ name: bad, type: 'tcp', host: 'h', port: 1 }] }), 'validation')
      assert.deepEqual(fieldNames(e), ['checks[0].name'])
      e = catchCased(() => new Monitor({}, { checks: { [bad]: () => ({ status: 'pass' }) } }), 'validation')
      assert.ok(fieldNames(e).includes('checks'), fieldNames(e).join())
    }
    e = catchCased(() => new Monitor({ schedule: { ['k'.repeat(100_000)]: 1 } }), 'validation')
    assert.ok(e.message.length < 1000 && e.message.includes('k'.repeat(64)), String(e.message.length))
  })
})

describe('secrets in check URLs', () => {
  test('secret query parameters are redacted in outcomes, and `redact` adds names', async (t) => {
    const server = await target(t, 503)
    const query = '?page=2&api_key=SEKRET1&X-Api-Key=SEKRET2&tenant=SEKRET3'
    let outcome = await runCheck({ name: 'web', type: 'http', url: `${server.url}/health${query}`, redact: ['tenant'] })
    assert.equal(outcome.status, 'fail')
    assert.equal(server.requests[0].url, `/health${query}`, 'the request itself carries the secrets')
    assert.equal(outcome.evidence.url, `${server.url}/health?page=2&api_key=[redacted]&X-Api-Key=[redacted]&tenant=[redacted]`)
    const port = await closedPort()
    outcome = await runCheck({ name: 'web', type: 'http', url: `http://127.0.0.1:${port}/${query}`, redact: ['tenant'] })
    assert.equal(outcome.status, 'fail')
    assert.match(outcome.message, /api_key=\[redacted\]/)
    assert.ok(!JSON.stringify(outcome).includes('SEKRET'), JSON.stringify(outcome))
  })
})

describe('runCheck configuration errors reject', () => {
  test('a bad value is named from the check', async () => {
    const e = await rejectsCased(runCheck({ name: 'web', type: 'http', url: 'not a url', expect: { status: [] } }), 'validation')
    assert.deepEqual(fieldNames(e), ['url', 'expect.status'])
    assert.match(fieldMessage(e, 'url'), /not an absolute http\(s\) URL/)
  })

  test('an unknown key or no object at all concern the whole check; an unknown type, `type`', async () => {
    let e = await rejectsCased(runCheck({ name: 'web', type: 'http', url: 'http://127.0.0.1/', urll: 1 }), 'validation')
    assert.deepEqual(fieldNames(e), ['check'])
    assert.match(e.message, /unknown field `urll`/)
    e = await rejectsCased(runCheck({ name: 'db', type: 'mysql' }), 'validation')
    assert.deepEqual(fieldNames(e), ['type'])
    assert.match(e.message, /unknown variant `mysql`/)
    e = await rejectsCased(runCheck(null), 'validation')
    assert.deepEqual(fieldNames(e), ['check'])
  })

  test('a bad duration is refused with its value', async () => {
    const e = await rejectsCased(runCheck({ name: 'web', type: 'http', url: 'http://127.0.0.1/', timeout: '10' }), 'validation')
    // The core's reader loses the key's path inside a check (a serde tagged enum): `check`.
    assert.deepEqual(fieldNames(e), ['check'])
    assert.match(fieldMessage(e, 'check'), /"10" is not a duration/)
  })
})

describe('runCheck: the other check types', () => {
  test('tcp connects to a real server, sends, and finds the expected text', async (t) => {
    const net = await import('node:net')
    const received = []
    const server = net.createServer((socket) => {
      socket.on('data', (d) => {
        received.push(d.toString('utf8'))
        socket.end('+PONG\r\n')
      })
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    t.after(() => server.close())
    const { port } = server.address()
    const outcome = await runCheck({ name: 'tcp', type: 'tcp', host: '127.0.0.1', port, send: 'PING\r\n', expect: 'PONG' })
    assert.equal(outcome.status, 'pass', outcome.message)
    assert.deepEqual(received, ['PING\r\n'])
    const wrong = await runCheck({ name: 'tcp', type: 'tcp', host: '127.0.0.1', port, send: 'PING\r\n', expect: 'HELLO' })
    assert.equal(wrong.status, 'fail', wrong.message)
  })

  test('tcp to a closed port fails', async () => {
    const port = await closedPort()
    const outcome = await runCheck({ name: 'tcp', type: 'tcp', host: '127.0.0.1', port, timeout: '2s' })
    assert.equal(outcome.status, 'fail')
  })

  test('command: `true` passes, `false` fails with its exit code, a missing program is an error', async () => {
    assert.equal((await runCheck({ name: 'ok', type: 'command', program: 'true' })).status, 'pass')
    const failed = await runCheck({ name: 'no', type: 'command', program: 'false' })
    assert.equal(failed.status, 'fail', failed.message)
    const out = await runCheck({ name: 'echo', type: 'command', program: 'echo', args: ['ready'], expect: { stdout_contains: 'ready' } })
    assert.equal(out.status, 'pass', out.message)
    const missing = await runCheck({ name: 'x', type: 'command', program: 'cased-no-such-program-7f3a' })
    assert.notEqual(missing.status, 'pass')
  })

  test('a key of another type is refused', async () => {
    const e = await rejectsCased(runCheck({ name: 'x', type: 'command', program: 'true', url: 'http://x/' }), 'validation')
    assert.match(e.message, /unknown field `url`/)
  })
})
