import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { describe, test } from 'node:test'

import { BaselineStore, DeploymentEvent, HostSource, Monitor, PrometheusSource } from '../index.js'
import { API_KEY, catchCased, fieldNames, rejectsCased, reply, startApi } from './support.mjs'

/** Answers Prometheus' API: `bodies[query]` is the `[status, body]` for a PromQL query. */
const prometheus = (bodies) =>
  startApi((request, res) => {
    const url = new URL(request.url, 'http://x')
    const [status, body] = bodies[url.searchParams.get('query')] ?? [404, 'not found']
    reply(res, status, body)
  })

const params = (request) => Object.fromEntries(new URL(request.url, 'http://x').searchParams)

describe('PrometheusSource', () => {
  test('an instant query sends the PromQL, the time and the token, and gives samples', async () => {
    const api = await prometheus({
      'rate(http_requests_total{job="web"}[5m])': [
        200,
        {
          status: 'success',
          data: {
            resultType: 'vector',
            result: [
              { metric: { __name__: 'x', instance: 'a' }, value: [1700000000.5, '12.5'] },
              { metric: { instance: 'b' }, value: [1700000000.5, 'NaN'] },
            ],
          },
        },
      ],
    })
    try {
      const source = new PrometheusSource(`${api.url}/prom`, { bearerToken: API_KEY, timeoutMs: 5000 })
      assert.ok(!inspect(source, { showHidden: true, depth: 5 }).includes(API_KEY))
      const samples = await source.query('rps', 'rate(http_requests_total{job="web"}[5m])', 1700000000.5)
      assert.deepEqual(samples, [{ metric: 'rps', labels: { instance: 'a' }, timestamp: 1700000000.5, value: 12.5 }])
      const [request] = api.requests
      assert.equal(new URL(request.url, 'http://x').pathname, '/prom/api/v1/query')
      assert.deepEqual(params(request), { query: 'rate(http_requests_total{job="web"}[5m])', time: '1700000000.500' })
      assert.equal(request.headers.authorization, `Bearer ${API_KEY}`)
    } finally {
      await api.close()
    }
  })

  test('a range query sends start, end and step, and gives every point', async () => {
    const api = await prometheus({
      up: [200, { status: 'success', data: { resultType: 'matrix', result: [{ metric: { job: 'w' }, values: [[100, '1'], [130, '0'], [160, '1']] }] } }],
    })
    try {
      const samples = await new PrometheusSource(api.url).queryRange('up', 'up', 100, 160, 30)
      assert.deepEqual(samples.map((s) => [s.timestamp, s.value]), [[100, 1], [130, 0], [160, 1]])
      assert.deepEqual(samples[0].labels, { job: 'w' })
      const [request] = api.requests
      assert.equal(new URL(request.url, 'http://x').pathname, '/api/v1/query_range')
      assert.deepEqual(params(request), { query: 'up', start: '100.000', end: '160.000', step: '30' })
      assert.equal(request.headers.authorization, undefined)
    } finally {
      await api.close()
    }
  })

  test('an empty result is no_data, an API error is query', async () => {
    const api = await prometheus({
      nothing: [200, { status: 'success', data: { resultType: 'vector', result: [] } }],
      'rate(': [400, { status: 'error', errorType: 'bad_data', error: 'parse error' }],
    })
    try {
      const source = new PrometheusSource(api.url, { bearerToken: API_KEY })
      let e = await rejectsCased(source.query('m', 'nothing'), 'no_data')
      assert.match(e.message, /matched no series/)
      e = await rejectsCased(source.query('m', 'rate('), 'query')
      assert.match(e.message, /parse error/)
      assert.ok(!e.message.includes(API_KEY))
      await rejectsCased(source.queryRange('m', 'x', 60, 0, 15), 'validation')
      e = await rejectsCased(source.queryRange('m', 'x', 0, 60, -1), 'validation')
      assert.deepEqual(fieldNames(e), ['stepSeconds'])
    } finally {
      await api.close()
    }
  })

  test('bad options are one validation error', () => {
    const e = catchCased(() => new PrometheusSource('ftp://x', { bearerToken: 42, timeoutMs: 'soon', token: 'x' }), 'validation')
    assert.deepEqual(fieldNames(e).sort(), ['bearerToken', 'timeoutMs', 'token', 'url'])
    assert.deepEqual(fieldNames(catchCased(() => new PrometheusSource('http://x', { timeoutMs: 0 }), 'validation')), ['timeout'])
  })
})

describe('HostSource', () => {
  test('samples memory (and disks) at once, finite', () => {
    const samples = new HostSource().sample()
    for (const metric of ['host_memory_used_percent', 'host_memory_used_bytes']) {
      const s = samples.find((x) => x.metric === metric)
      assert.ok(s, metric)
      assert.ok(Number.isFinite(s.value) && s.value > 0, `${metric}: ${s.value}`)
      assert.ok(Number.isFinite(s.timestamp))
    }
    assert.ok(samples.find((x) => x.metric === 'host_memory_used_percent').value <= 100)
    for (const d of samples.filter((x) => x.metric === 'host_disk_used_percent')) assert.equal(typeof d.labels.mount, 'string')
  })
})

describe('BaselineStore', () => {
  const event = () =>
    new DeploymentEvent({
      deployment_request: 'Deploy',
      repository_full_name: 'acme/shop',
      status: 'success',
      event_metadata: { environment: 'production' },
    })
  const monitor = (baselineStore) =>
    new Monitor(
      {
        schedule: { intervals: ['50ms'], cooldown: '300ms', max_duration: '20s' },
        verdict: { min_samples: 3 },
        detectors: [{ type: 'baseline', metric: 'web.latency_ms', min_samples: 3 }],
      },
      { checks: { web: () => ({ status: 'pass', latencyMs: 40 }) }, baselineStore },
    )

  for (const [name, open] of [
    ['inMemory', () => BaselineStore.inMemory()],
    ['sqlite', (dir) => BaselineStore.sqlite(join(dir, 'baselines.db'))],
  ]) {
    test(`${name}: a healthy session becomes the baseline of the next one`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cased-baselines-'))
      try {
        const store = open(dir)
        assert.equal(store.path, name === 'sqlite' ? join(dir, 'baselines.db') : null)
        const first = await monitor(store).run(event())
        assert.deepEqual(first.no_data, ['web.latency_ms'], first.reason)
        assert.equal(first.verdict, 'healthy', 'a first deployment is judged on its checks')
        assert.ok(first.notes.some((n) => /no earlier baseline existed for web\.latency_ms/.test(n)), first.notes)
        const second = await monitor(store).run(event())
        assert.deepEqual(second.no_data, [], second.reason)
        assert.equal(second.verdict, 'healthy', second.reason)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  }

  test('a file that cannot be opened is a storage error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cased-baselines-'))
    try {
      const e = catchCased(() => BaselineStore.sqlite(join(dir, 'missing', 'dir', 'baselines.db')), 'storage')
      assert.match(e.message, /baseline store/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('baselineStore must be a BaselineStore', () => {
    const e = catchCased(() => new Monitor({}, { baselineStore: {} }), 'validation')
    assert.deepEqual(fieldNames(e), ['baselineStore'])
  })
})
