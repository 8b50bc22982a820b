// Hardening: hostile input and faults end as errors and outcomes, never a crash or a hang.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { Client, compare, DeploymentEvent, Monitor, renderReport, signWebhook, verifyWebhookSignature } from '../index.js'
import { API_KEY, catchCased, fieldMessage, fieldNames, rejectsCased, reply, startApi } from './support.mjs'

const LIMIT = 64 // cased_core::limits::MAX_JSON_DEPTH

/** An object nesting `levels` objects ({} is one level). */
function nested(levels) {
  let d = {}
  for (let i = 1; i < levels; i++) d = { a: d }
  return d
}

describe('deep and cyclic input', () => {
  test('event_metadata nested one level past the limit is a validation error naming the field', () => {
    const e = catchCased(() => new DeploymentEvent({ deployment_request: 'd', event_metadata: nested(LIMIT + 1) }), 'validation')
    assert.equal(fieldMessage(e, 'event_metadata'), `is nested deeper than ${LIMIT} levels`)
    const ok = new DeploymentEvent({ deployment_request: 'd', event_metadata: nested(LIMIT) })
    assert.deepEqual(ok.eventMetadata, nested(LIMIT))
  })

  test('a configuration nested past the limit is a validation error', () => {
    const e = catchCased(() => new Monitor({ x: nested(LIMIT) }), 'validation')
    assert.equal(fieldMessage(e, 'config'), `is nested deeper than ${LIMIT} levels`)
  })

  test('very deep and cyclic values throw instead of crashing', () => {
    const cyclic = { x: 1 }
    cyclic.s = cyclic
    for (const bad of [nested(3000), cyclic]) {
      assert.throws(() => new DeploymentEvent({ deployment_request: 'd', event_metadata: bad }))
      assert.throws(() => new Monitor(bad))
    }
  })
})

describe('time arithmetic', () => {
  test('a Retry-After of 2^64 - 1 seconds ends the retries with a clear server error', async (t) => {
    const api = await startApi((_, res) => reply(res, 503, { message: 'maintenance' }, { 'retry-after': '18446744073709551615' }))
    t.after(() => api.close())
    const client = new Client({ apiKey: API_KEY, baseUrl: api.url })
    const e = await rejectsCased(client.createDeployment(new DeploymentEvent({ deployment_request: 'd' })), 'server')
    assert.match(e.message, /beyond the retry budget/)
    assert.equal(api.requests.length, 1)
  })

  test('absurd timeouts and retry budgets are refused at configuration time, naming the key', () => {
    const e = catchCased(() => new Monitor({ checks: [{ name: 'web', type: 'http', url: 'http://127.0.0.1:1/', timeout: '584942417y' }] }), 'validation')
    assert.ok(fieldNames(e).some((f) => f.endsWith('timeout')), fieldNames(e))
    assert.match(e.message, /longest timeout accepted/)
    const d = catchCased(() => new Monitor({
      alerts: { channels: [{ name: 'h', type: 'webhook', url: 'http://127.0.0.1:1/', secret: 'k' }], delivery: { max_elapsed: '584942417y' } },
    }), 'validation')
    assert.deepEqual(fieldNames(d), ['alerts.delivery.max_elapsed'])
  })

  test('verifyWebhookSignature with a now beyond the clock throws instead of panicking', () => {
    const sig = signWebhook('k', 1_700_000_000, '{}')
    assert.throws(() => verifyWebhookSignature('k', 1_700_000_000, '{}', sig, 300, 1.8e19), /nowSecs/)
  })
})

describe('alerts at the end of a script', () => {
  const config = {
    schedule: { intervals: ['20ms'], max_duration: '20s' },
    alerts: {
      channels: [{ name: 'pager', type: 'custom' }],
      routes: [{ channels: ['pager'], group_wait: '10ms' }],
      delivery: { max_retries: 2, initial_backoff: '10ms', max_backoff: '20ms' },
    },
  }
  const down = () => ({ status: 'fail', message: 'HTTP 503' })
  const event = () => new DeploymentEvent({ deployment_request: 'Deploy v2' })

  test('run() delivers its alerts before it resolves', async () => {
    const delivered = []
    const monitor = new Monitor(config, { checks: { web: down }, notifiers: { pager: async (n) => delivered.push(n) } })
    const report = await monitor.run(event())
    assert.equal(report.verdict, 'unhealthy')
    assert.deepEqual(delivered.map((n) => n.alerts[0].key), [report.alerts[0].key])
    assert.deepEqual(report.alert_failures, [])
    const stats = await monitor.close()
    assert.equal(stats.delivered, 1)
  })

  test('the final alert failure is in the report, and close() counts it', async () => {
    const monitor = new Monitor(config, {
      checks: { web: down },
      notifiers: { pager: async () => { throw new Error('pager answered 500') } },
    })
    const report = await monitor.run(event())
    assert.equal(report.alert_failures.length, 1)
    assert.equal(report.alert_failures[0].channel, 'pager')
    assert.match(report.alert_failures[0].error, /pager answered 500/)
    const stats = await monitor.close()
    assert.equal(stats.failed, 1)
  })

  test('Symbol.asyncDispose closes the monitor; close() validates graceMs', async () => {
    assert.equal(typeof Monitor.prototype[Symbol.asyncDispose], 'function')
    const monitor = new Monitor({})
    assert.equal(await monitor[Symbol.asyncDispose](), undefined)
    assert.throws(() => monitor.close(-1), /graceMs/)
  })
})

describe('command checks', () => {
  test('a command is judged by its exit status and its orphans are killed', async () => {
    const { runCheck } = await import('../index.js')
    const { readFileSync } = await import('node:fs')
    const outcome = await runCheck({ name: 'c', type: 'command', shell: true, program: 'sleep 30 & echo $!; exit 0', timeout: '20s' })
    assert.equal(outcome.status, 'pass', JSON.stringify(outcome))
    const pid = Number(outcome.evidence.stdout.trim())
    let state = 'gone'
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()[0]
    } catch {}
    assert.ok(['gone', 'Z', 'X'].includes(state), `the orphan ${pid} is ${state}`)
  })
})

describe('found by the binding fuzz', () => {
  test('NaN and ±Infinity in metadata and configuration are refused naming the key (as in Python)', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const e = catchCased(() => new DeploymentEvent({ deployment_request: 'x', event_metadata: { ok: 1.5, scores: { p99: [0.1, bad] } } }), 'validation')
      assert.deepEqual(fieldNames(e), ['event_metadata.scores.p99[1]'])
      assert.match(e.message, /not a number JSON can hold/)
      const m = catchCased(() => new Monitor({ verdict: { failure_limit: bad } }), 'validation')
      assert.deepEqual(fieldNames(m), ['verdict.failure_limit'])
    }
  })

  test('undefined in an array, functions and symbols are validation errors naming their path', () => {
    let e = catchCased(() => new DeploymentEvent({ deployment_request: 'x', event_metadata: { a: [1, undefined] } }), 'validation')
    assert.deepEqual(fieldNames(e), ['event_metadata.a[1]'])
    e = catchCased(() => new DeploymentEvent({ deployment_request: () => 1 }), 'validation')
    assert.deepEqual(fieldNames(e), ['deployment_request'])
    e = catchCased(() => new Monitor({ checks: [{ name: Symbol('w') }] }), 'validation')
    assert.deepEqual(fieldNames(e), ['checks[0].name'])
  })

  test('a BigInt in a report to render is a validation error naming its path, not a bare TypeError', async () => {
    const e = catchCased(() => renderReport({ counters: { errors: 1n } }, 'md'), 'validation')
    assert.deepEqual(fieldNames(e), ['counters.errors'])
  })

  test('a blank unknown option is named quoted, not as an empty field', () => {
    const e = catchCased(() => compare([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], null, { '': 1 }), 'validation')
    assert.deepEqual(fieldNames(e), ['""'])
  })

  test('values so large their spread overflows are compared, not a panic that aborts node', () => {
    const huge = [1e308, -1e308, 1e308, -1e308, 1e308, -1.7e308]
    const judged = compare([0, 0, 0, 0, 0, 1], huge)
    assert.equal(judged.spread.p_value, 1)
  })
})

describe('a detector on a metric nothing produces', () => {
  const config = {
    checks: [{ name: 'web', type: 'tcp', host: '127.0.0.1', port: 9 }],
    detectors: [
      { type: 'spike', metric: 'web.latency_ms' },
      { type: 'spike', metric: 'queue.latency_ms' },
      { type: 'spike', metric: 'web.latency', name: 'slow-web' },
    ],
  }
  const queue = async () => ({ status: 'pass', message: 'ok' })

  test('is refused by the constructor, naming the detector and the metric', () => {
    const e = catchCased(() => new Monitor(config), 'validation')
    assert.deepEqual(fieldNames(e), ['detectors[1].metric', 'detectors[2].metric'])
    const message = fieldMessage(e, 'detectors[2].metric')
    assert.match(message, /"slow-web" detector watches "web\.latency"/)
    assert.match(message, /web\.latency_ms/)
    // A custom check produces queue.latency_ms; web.latency is still refused.
    const e2 = catchCased(() => new Monitor(config, { checks: { queue } }), 'validation')
    assert.deepEqual(fieldNames(e2), ['detectors[2].metric'])
    // Declared as pushed, it is accepted.
    const ok = new Monitor({ ...config, pushed: ['web.latency'] }, { checks: { queue } })
    assert.deepEqual(ok.checkNames, ['web', 'queue'])
  })

  test('a push-only monitor is not held to the rule; declaring pushed opts in', () => {
    new Monitor({ detectors: [{ type: 'spike', metric: 'queue_depth' }] })
    const e = catchCased(
      () => new Monitor({ pushed: ['queue_depth'], detectors: [{ type: 'spike', metric: 'queue_dept' }] }),
      'validation',
    )
    assert.deepEqual(fieldNames(e), ['detectors[0].metric'])
    assert.match(fieldMessage(e, 'detectors[0].metric'), /"queue_dept"/)
    const blank = catchCased(() => new Monitor({ pushed: [''] }), 'validation')
    assert.deepEqual(fieldNames(blank), ['pushed[0]'])
  })
})
