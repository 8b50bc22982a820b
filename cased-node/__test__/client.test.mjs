import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { inspect } from 'node:util'

import { Client, DeploymentEvent } from '../index.js'
import { API_KEY, INDEX, catchCased, child, closedPort, fieldMessage, fieldNames, rejectsCased, reply, startApi } from './support.mjs'

const event = new DeploymentEvent({
  deployment_request: 'Deploy v1.4.2',
  repository_full_name: 'acme/shop',
  commit_sha: 'abcdef1',
  ref: 'refs/heads/main',
  event_metadata: { environment: 'production', correlation_id: 'c-42' },
})

/** Starts a server answering with `respond`, and a client of it. */
async function setup(t, respond, options = {}) {
  const api = await startApi(respond)
  t.after(() => api.close())
  const client = new Client({ apiKey: API_KEY, baseUrl: api.url, ...options })
  return { api, client }
}

/** Asserts the key shows up nowhere in what an error exposes. */
function assertNoKey(e) {
  for (const text of [e.message, e.code, e.stack, JSON.stringify(e.fields), inspect(e, { depth: Infinity, showHidden: true })]) {
    assert.ok(!String(text).includes(API_KEY), `API key leaked in: ${text}`)
  }
}

describe('createDeployment against a real HTTP server', () => {
  test('posts the event: method, path, headers and the exact body', async (t) => {
    const { api, client } = await setup(t, (_, res) => reply(res, 201, { id: 'dep_1', received: true }))
    const response = await client.createDeployment(event)
    assert.deepEqual(response, { status: 201, body: { id: 'dep_1', received: true }, attempts: 1 })
    assert.equal(api.requests.length, 1)
    const [request] = api.requests
    assert.equal(request.method, 'POST')
    assert.equal(request.url, '/api/v1/deployments/')
    assert.equal(request.headers.authorization, `Bearer ${API_KEY}`)
    assert.equal(request.headers['content-type'], 'application/json')
    assert.equal(request.headers.accept, 'application/json')
    assert.match(request.headers['user-agent'], /^cased\/\d+\.\d+\.\d+/)
    assert.equal(request.body, event.toJson())
    assert.equal(
      request.body,
      '{"deployment_request":"Deploy v1.4.2","repository_full_name":"acme/shop","status":"success",' +
        '"commit_sha":"abcdef1","ref":"refs/heads/main",' +
        '"event_metadata":{"correlation_id":"c-42","environment":"production"}}',
    )
  })

  test('keeps a path prefix of the base URL', async (t) => {
    const api = await startApi((_, res) => reply(res, 200, { ok: true }))
    t.after(() => api.close())
    const client = new Client({ apiKey: API_KEY, baseUrl: `${api.url}/tenant/a` })
    assert.equal(client.endpoint, `${api.url}/tenant/a/api/v1/deployments/`)
    assert.equal((await client.createDeployment(event)).status, 200)
    assert.equal(api.requests[0].url, '/tenant/a/api/v1/deployments/')
  })

  test('an empty body is absent; a body that is not JSON is kept as text', async (t) => {
    const { client } = await setup(t, (_, res, n) => (n === 1 ? reply(res, 204) : reply(res, 202, 'queued')))
    const empty = await client.createDeployment(event)
    assert.deepEqual(empty, { status: 204, attempts: 1 })
    assert.equal(empty.body, undefined)
    assert.deepEqual(await client.createDeployment(event), { status: 202, body: 'queued', attempts: 1 })
  })

  test('several calls run concurrently on one client', async (t) => {
    const pending = []
    const { api, client } = await setup(t, (_, res) => {
      pending.push(res)
      // Answer only when all five are in flight at once.
      if (pending.length === 5) for (const r of pending) reply(r, 201, { ok: true })
    })
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.createDeployment(event)))
    assert.equal(api.requests.length, 5)
    for (const a of answers) assert.equal(a.status, 201)
  })
})

describe('API errors carry a stable code', () => {
  test('401 is `unauthorized`, not retried', async (t) => {
    const { api, client } = await setup(t, (_, res) => reply(res, 401, { message: 'invalid API key' }))
    const e = await rejectsCased(client.createDeployment(event), 'unauthorized')
    assert.equal(e.status, 401)
    assert.equal(e.message, 'unauthorized (HTTP 401): invalid API key')
    assert.deepEqual(e.fields, [])
    assert.equal(api.requests.length, 1)
    assertNoKey(e)
  })

  test("422 is `invalid_request` with the server's message, not retried", async (t) => {
    const { api, client } = await setup(t, (_, res) =>
      reply(res, 422, { detail: 'commit_sha abcdef1 is unknown to acme/shop', code: 17 }),
    )
    const e = await rejectsCased(client.createDeployment(event), 'invalid_request')
    assert.equal(e.status, 422)
    assert.equal(e.message, 'invalid request (HTTP 422): commit_sha abcdef1 is unknown to acme/shop')
    assert.equal(api.requests.length, 1)
    assertNoKey(e)
  })

  test('503 then 201 succeeds on the second attempt with the same body', async (t) => {
    const { api, client } = await setup(t, (_, res, n) =>
      n === 1 ? reply(res, 503, { error: 'warming up' }, { 'retry-after': '0' }) : reply(res, 201, { id: 'dep_2' }),
    )
    assert.deepEqual(await client.createDeployment(event), { status: 201, body: { id: 'dep_2' }, attempts: 2 })
    assert.equal(api.requests.length, 2)
    assert.equal(api.requests[0].body, api.requests[1].body)
    // One Idempotency-Key per event, kept across its retries; the next event gets another.
    const key = api.requests[0].headers['idempotency-key']
    assert.match(key, /^[0-9a-f]{32}$/)
    assert.equal(api.requests[1].headers['idempotency-key'], key)
    await client.createDeployment(event)
    assert.notEqual(api.requests[2].headers['idempotency-key'], key)
  })

  test('503 until the retries run out is `server`', async (t) => {
    const { api, client } = await setup(t, (_, res) => reply(res, 503, { error: 'down' }, { 'retry-after': '0' }), { maxRetries: 2 })
    const e = await rejectsCased(client.createDeployment(event), 'server')
    assert.equal(e.status, 503)
    assert.equal(api.requests.length, 3)
  })

  test('429 until the retries run out is `rate_limited`', async (t) => {
    const { api, client } = await setup(t, (_, res) => reply(res, 429, { message: 'slow down' }, { 'retry-after': '0' }), { maxRetries: 1 })
    const e = await rejectsCased(client.createDeployment(event), 'rate_limited')
    assert.equal(e.status, 429)
    assert.match(e.message, /slow down/)
    assert.equal(api.requests.length, 2)
  })

  test('a success body over 1 MiB is `transport`, never retried', async (t) => {
    const huge = `"${'x'.repeat(1 << 20)}"`
    const { api, client } = await setup(t, (_, res) => reply(res, 201, huge), { maxRetries: 3 })
    const e = await rejectsCased(client.createDeployment(event), 'transport')
    assert.match(e.message, /HTTP 201 .*1 MiB/)
    assert.ok(e.message.length < 400)
    assert.equal(api.requests.length, 1)
  })

  test('a refused connection is `transport`', async () => {
    const port = await closedPort()
    const client = new Client({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 })
    const e = await rejectsCased(client.createDeployment(event), 'transport')
    assert.match(e.message, /refused/i)
    assert.equal(e.status, undefined)
    assertNoKey(e)
  })

  test('a server that never answers is `timeout` after timeoutMs', async (t) => {
    const { api, client } = await setup(t, () => {}, { timeoutMs: 300 })
    const started = performance.now()
    const [e] = await Promise.all([rejectsCased(client.createDeployment(event), 'timeout'), api.nextRequest()])
    assert.ok(performance.now() - started >= 290, 'did not give up before the timeout')
    // Sent and maybe received: a timed-out request is never repeated.
    assert.equal(api.requests.length, 1)
    assertNoKey(e)
  })
})

describe('client options', () => {
  test('every bad option is reported at once, under its own name or the core one', () => {
    const e = catchCased(
      () => new Client({ apiKey: 'sk has space', baseUrl: 'ftp://example.com', timeout: 5, timeoutMs: -1, maxRetries: 2.5 }),
      'validation',
    )
    assert.deepEqual(fieldNames(e), ['timeout', 'timeoutMs', 'maxRetries', 'api_key', 'base_url'])
    assert.match(fieldMessage(e, 'timeout'), /^unknown option \(known options: apiKey, baseUrl, timeoutMs, maxRetries\)$/)
    assert.match(e.message, /^invalid client configuration \(5 problems\)/)
    assert.ok(!e.message.includes('sk has space'), 'the key is never echoed')
  })

  test('the core checks the values: zero timeout, too many retries, no key', () => {
    const saved = process.env.CASED_API_KEY
    delete process.env.CASED_API_KEY
    try {
      const e = catchCased(() => new Client({ timeoutMs: 0, maxRetries: 101 }), 'validation')
      assert.deepEqual(e.fields, [
        { field: 'api_key', message: 'is required: pass it to the client or set CASED_API_KEY' },
        { field: 'timeout', message: 'must be greater than zero' },
        { field: 'max_retries', message: '101 is more than 100' },
      ])
      assert.deepEqual(fieldNames(catchCased(() => new Client(), 'validation')), ['api_key'])
    } finally {
      if (saved !== undefined) process.env.CASED_API_KEY = saved
    }
  })

  test('the key may come from CASED_API_KEY; null options mean default', async (t) => {
    const saved = process.env.CASED_API_KEY
    process.env.CASED_API_KEY = API_KEY
    t.after(() => (saved === undefined ? delete process.env.CASED_API_KEY : (process.env.CASED_API_KEY = saved)))
    const api = await startApi((_, res) => reply(res, 201, {}))
    t.after(() => api.close())
    const client = new Client({ apiKey: null, baseUrl: api.url, timeoutMs: null })
    await client.createDeployment(event)
    assert.equal(api.requests[0].headers.authorization, `Bearer ${API_KEY}`)
  })

  test('the base URL may come from CASED_BASE_URL', async (t) => {
    const api = await startApi((_, res) => reply(res, 201, {}))
    t.after(() => api.close())
    process.env.CASED_BASE_URL = api.url
    t.after(() => delete process.env.CASED_BASE_URL)
    await new Client({ apiKey: API_KEY }).createDeployment(event)
    assert.equal(api.requests.length, 1)
    assert.equal(api.requests[0].url, '/api/v1/deployments/')
    process.env.CASED_BASE_URL = 'not a url'
    const e = catchCased(() => new Client({ apiKey: API_KEY }), 'validation')
    assert.deepEqual(fieldNames(e), ['base_url'])
    assert.match(fieldMessage(e, 'base_url'), /\(from CASED_BASE_URL\)/)
    new Client({ apiKey: API_KEY, baseUrl: api.url }) // a base URL given wins
  })

  test('values of the wrong kind are refused without echoing them', () => {
    const e = catchCased(
      () => new Client({ apiKey: 987654321, baseUrl: ['http://x'], timeoutMs: '300', maxRetries: true }),
      'validation',
    )
    assert.deepEqual(e.fields.slice(0, 4), [
      { field: 'apiKey', message: 'must be a string, got a number' },
      { field: 'baseUrl', message: 'must be a string, got an array' },
      { field: 'timeoutMs', message: 'must be a number of milliseconds, got a string' },
      { field: 'maxRetries', message: 'must be a number, got a boolean' },
    ])
    assert.ok(!e.message.includes('987654321'))
  })

  test('options must be an object: passing the key itself is refused without echoing it', () => {
    for (const [bad, kind] of [[API_KEY, 'a string'], [42, 'a number'], [[API_KEY], 'an array']]) {
      const e = catchCased(() => new Client(bad), 'validation')
      assert.equal(fieldMessage(e, 'options'), `must be an object such as { apiKey, baseUrl }, got ${kind}`)
      assert.ok(!inspect(e).includes(API_KEY))
    }
  })

  test('createDeployment takes a DeploymentEvent, not a plain object', () => {
    const client = new Client({ apiKey: API_KEY, baseUrl: 'http://127.0.0.1:9' })
    assert.throws(
      () => client.createDeployment({ deployment_request: 'Deploy' }),
      (e) => e instanceof Error && e.code === 'InvalidArg' && /DeploymentEvent/.test(e.message),
    )
  })

  test('the default endpoint is the hosted API', () => {
    assert.equal(new Client({ apiKey: API_KEY }).endpoint, 'https://app.cased.com/api/v1/deployments/')
  })
})

describe('the API key stays secret', () => {
  test('util.inspect, JSON.stringify and own properties of the client never show it', () => {
    const client = new Client({ apiKey: API_KEY, baseUrl: 'http://127.0.0.1:9' })
    const views = [
      inspect(client),
      inspect(client, { showHidden: true, depth: Infinity, getters: true }),
      JSON.stringify(client),
      JSON.stringify(Object.getOwnPropertyNames(client).map((k) => client[k])),
      String(client),
    ]
    for (const v of views) assert.ok(!String(v).includes(API_KEY), `leaked in ${v}`)
    assert.ok(!Object.getOwnPropertyNames(client).some((k) => /key/i.test(k)))
  })
})

describe('abandoned calls', () => {
  test('exiting while a call is in flight does not crash the process', { timeout: 60_000 }, async (t) => {
    const api = await startApi(() => {}) // never answers
    t.after(() => api.close())
    const { proc, exited } = child(`
      import { Client, DeploymentEvent } from ${JSON.stringify(INDEX)}
      const client = new Client({ apiKey: ${JSON.stringify(API_KEY)}, baseUrl: ${JSON.stringify(api.url)}, maxRetries: 0 })
      client.createDeployment(new DeploymentEvent({ deployment_request: 'Deploy' })) // neither awaited nor caught
      process.stdin.once('data', () => process.exit(0))
    `)
    await api.nextRequest()
    proc.stdin.write('exit\n')
    const result = await exited
    assert.deepEqual(result, { code: 0, signal: null, stdout: '', stderr: '' })
  })

  test('a call whose promise and client were dropped and collected still settles quietly', { timeout: 60_000 }, async (t) => {
    let answer
    const api = await startApi((_, res) => (answer = res))
    t.after(() => api.close())
    const { proc, output, exited } = child(`
      import { Client, DeploymentEvent } from ${JSON.stringify(INDEX)}
      ;(() => {
        const client = new Client({ apiKey: ${JSON.stringify(API_KEY)}, baseUrl: ${JSON.stringify(api.url)}, maxRetries: 0 })
        client.createDeployment(new DeploymentEvent({ deployment_request: 'Deploy' }))
      })()
      globalThis.gc()
      process.stdout.write('dropped\\n')
      process.stdin.once('data', () => process.stdin.destroy())
    `)
    await Promise.all([
      api.nextRequest(),
      new Promise((resolve) => proc.stdout.on('data', () => output.stdout.includes('dropped') && resolve())),
    ])
    reply(answer, 201, { id: 'late' })
    proc.stdin.write('go\n')
    // The child must exit on its own once the call settled: nothing keeps it alive.
    const result = await exited
    assert.deepEqual(result, { code: 0, signal: null, stdout: 'dropped\n', stderr: '' })
  })

  test('a rejected call that is handled leaves the process healthy', async () => {
    const port = await closedPort()
    const client = new Client({ apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}`, maxRetries: 0 })
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => client.createDeployment(event)))
    assert.deepEqual(new Set(results.map((r) => `${r.status}:${r.reason?.code}`)), new Set(['rejected:transport']))
  })
})
