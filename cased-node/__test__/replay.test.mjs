import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { DeploymentEvent, Monitor } from '../index.js'
import { catchCased } from './support.mjs'

const T0 = 1_764_763_200

const event = () =>
  new DeploymentEvent({
    deployment_request: 'Deploy v2',
    repository_full_name: 'acme/shop',
    event_metadata: { environment: 'prod' },
  })

/** An hour at ~100 ms before the deploy, 30 minutes at ~`after` ms after it, every 10 s. */
function latency(after) {
  const wobble = (i) => ((i * 0.618033988749) % 1) * 4 - 2
  const samples = []
  for (let i = 0; i < 360; i++) samples.push({ metric: 'api.latency_ms', timestamp: T0 - 3600 + 10 * i, value: 100 + wobble(i) })
  for (let i = 0; i < 180; i++) samples.push({ metric: 'api.latency_ms', timestamp: T0 + 10 * i, value: after + wobble(360 + i) })
  return { started_at: T0, samples }
}

const counts = (rate) => ({
  started_at: T0,
  counts: Array.from({ length: 180 }, (_, i) => ({ metric: 'api.http', timestamp: T0 + 10 * i, errors: Math.round(rate * 2000), requests: 2000 })),
})

const CONFIG = { detectors: [{ type: 'baseline', metric: 'api.latency_ms', allowed_change: 0.1 }] }

describe('replay', () => {
  test('a recording is judged on a virtual clock against its pre-deploy window', async () => {
    const monitor = new Monitor(CONFIG)
    const started = Date.now()
    const bad = await monitor.replay(event(), latency(200))
    assert.ok(Date.now() - started < 30_000, 'a 30-minute recording replays without waiting')
    assert.equal(bad.verdict, 'unhealthy', bad.reason)
    assert.equal(bad.baselines['api.latency_ms'], 'the window before the deployment (360 values)')
    const finding = bad.findings.find((f) => f.metric === 'api.latency_ms')
    assert.ok(finding.index >= 0 && finding.tick >= 1, JSON.stringify(finding))
    assert.equal(bad.started_at_unix_ms, T0 * 1000)
    const good = await monitor.replay(event(), latency(100))
    assert.equal(good.verdict, 'healthy', good.reason)
  })

  test('the report says when the metric changed', async () => {
    const recording = latency(100)
    for (const s of recording.samples) if (s.timestamp >= T0 + 60) s.value += 100
    const report = await new Monitor(CONFIG).replay(event(), recording)
    assert.equal(report.verdict, 'unhealthy', report.reason)
    assert.equal(report.changes.length, 1, JSON.stringify(report.changes))
    const [change] = report.changes
    assert.equal(change.metric, 'api.latency_ms')
    assert.equal(change.at_unix_ms, (T0 + 60) * 1000)
    assert.equal(change.after_start_ms, 60_000)
    assert.ok(change.earliest_unix_ms < change.at_unix_ms && change.at_unix_ms <= change.latest_unix_ms)
    assert.match(change.message, /, 1m after the rollout started\.$/)
    const good = await new Monitor(CONFIG).replay(event(), latency(100))
    assert.deepEqual(good.changes, [])
  })

  test('a first deployment without baseline is healthy and the report says why', async () => {
    const recording = latency(100)
    recording.samples = recording.samples.filter((s) => s.timestamp >= T0)
    const report = await new Monitor(CONFIG).replay(event(), recording)
    assert.equal(report.verdict, 'healthy', report.reason)
    assert.ok(report.notes.some((n) => n.includes('no earlier baseline existed for api.latency_ms')), report.notes)
  })

  test('a bad recording is a validation error naming the field', async () => {
    const monitor = new Monitor(CONFIG)
    await assert.rejects(monitor.replay(event(), { started_at: T0, samples: [{ metric: '', timestamp: T0, value: 1 }] }), (e) => {
      assert.equal(e.code, 'validation')
      assert.match(e.message, /samples\[0\]\.metric/)
      return true
    })
  })
})

describe('error rates', () => {
  test('counts baselines judge replayed and pushed counts', async () => {
    const config = { detectors: [{ type: 'error_rate', metric: 'api.http' }] }
    const monitor = new Monitor(config, { baselines: { 'api.http': { errors: 10, requests: 2000 } } })
    const bad = await monitor.replay(event(), counts(0.05))
    assert.equal(bad.verdict, 'unhealthy', bad.reason)
    assert.match(bad.baselines['api.http'], /^a baseline provided by the caller/)
    assert.equal((await monitor.replay(event(), counts(0.005))).verdict, 'healthy')
    const live = new Monitor(
      { ...config, schedule: { intervals: ['10ms'], cooldown: '200ms', max_duration: '20s' }, verdict: { min_samples: 1 } },
      { baselines: { 'api.http': { errors: 10, requests: 20_000 } } },
    )
    const session = await live.start(event())
    session.pushCounts('api.http', 100, 1000)
    assert.equal((await session.wait()).verdict, 'unhealthy')
  })

  test('bad baselines and counts are validation errors naming the field', async () => {
    const e = catchCased(() => new Monitor({}, { baselines: { 'api.http': { errors: 20, requests: 10 } } }), 'validation')
    assert.match(e.message, /baselines\.api\.http/)
    const v = catchCased(() => new Monitor({}, { baselines: { lat: 'fast' } }), 'validation')
    assert.match(v.message, /baselines\.lat/)
    const monitor = new Monitor({ detectors: [{ type: 'error_rate', metric: 'api.http' }] })
    const session = await monitor.start(event())
    const c = catchCased(() => session.pushCounts('api.http', -1, 10), 'validation')
    assert.match(c.message, /errors/)
    session.cancel()
    await session.wait()
  })
})

describe('the replay example', () => {
  test('runs and catches the regression', async () => {
    const { execFile } = await import('node:child_process')
    const { promisify } = await import('node:util')
    const { fileURLToPath } = await import('node:url')
    const script = fileURLToPath(new URL('../../examples/node/replay.mjs', import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, [script], { timeout: 60_000 })
    assert.match(stdout, /^verdict: unhealthy/)
    assert.match(stdout, /baseline: the window before the deployment \(360 values\)/)
  })
})
