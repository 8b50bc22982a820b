import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { enableLogging } from '../index.js'
import { API_KEY, INDEX, catchCased, child, fieldMessage, reply, startApi } from './support.mjs'

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '')

/** A child node that optionally enables logging, posts one event to `url` and exits. */
const poster = (url, enable) => `
  import { Client, DeploymentEvent, enableLogging } from ${JSON.stringify(INDEX)}
  ${enable}
  const client = new Client({ apiKey: ${JSON.stringify(API_KEY)}, baseUrl: ${JSON.stringify(url)}, maxRetries: 0 })
  const event = new DeploymentEvent({
    deployment_request: 'Deploy v2',
    repository_full_name: 'acme/shop',
    event_metadata: { environment: 'production', correlation_id: 'corr-7' },
  })
  const { status } = await client.createDeployment(event)
  process.stdout.write(String(status))
`

describe('enableLogging', () => {
  test('the library is silent until logging is enabled', { timeout: 60_000 }, async (t) => {
    const api = await startApi((_, res) => reply(res, 201, {}))
    t.after(() => api.close())
    const result = await child(poster(api.url, ''), { RUST_LOG: 'trace' }).exited
    assert.deepEqual(result, { code: 0, signal: null, stdout: '201', stderr: '' })
  })

  test('enabled, it logs to stderr with structured fields and never the API key', { timeout: 60_000 }, async (t) => {
    const api = await startApi((_, res) => reply(res, 201, {}))
    t.after(() => api.close())
    const result = await child(poster(api.url, "enableLogging('cased_core=debug')")).exited
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.stdout, '201')
    const log = stripAnsi(result.stderr)
    assert.match(log, /deployment event accepted/)
    for (const field of ['repository="acme/shop"', 'environment="production"', 'correlation_id="corr-7"', 'status=201', 'attempt=1']) {
      assert.ok(log.includes(field), `${field} in ${log}`)
    }
    assert.ok(!log.includes(API_KEY), 'the API key is never logged')
  })

  test('without a filter, RUST_LOG decides', { timeout: 60_000 }, async (t) => {
    const api = await startApi((_, res) => reply(res, 401, { message: 'nope' }))
    t.after(() => api.close())
    const script = `
      import { Client, DeploymentEvent, enableLogging } from ${JSON.stringify(INDEX)}
      enableLogging()
      const client = new Client({ apiKey: ${JSON.stringify(API_KEY)}, baseUrl: ${JSON.stringify(api.url)} })
      const error = await client.createDeployment(new DeploymentEvent({ deployment_request: 'Deploy' })).catch((e) => e)
      process.stdout.write(error.code)
    `
    const quiet = await child(script, { RUST_LOG: 'error' }).exited
    assert.deepEqual(quiet, { code: 0, signal: null, stdout: 'unauthorized', stderr: '' })
    const loud = await child(script, { RUST_LOG: 'cased_core=warn' }).exited
    assert.equal(loud.stdout, 'unauthorized')
    assert.match(stripAnsi(loud.stderr), /WARN .*deployment event not delivered attempt=1 error=unauthorized \(HTTP 401\): nope/)
    assert.ok(!loud.stderr.includes(API_KEY), 'the API key is never logged')
  })

  test('a filter that does not parse is a validation error on `filter`; enabling twice is refused', () => {
    const e = catchCased(() => enableLogging('cased_core=verbose'), 'validation')
    assert.match(fieldMessage(e, 'filter'), /"cased_core=verbose": error parsing level filter/)
    assert.equal(enableLogging('off'), undefined)
    const again = catchCased(() => enableLogging('info'), 'validation')
    assert.match(fieldMessage(again, 'filter'), /already initialised/)
  })
})
