import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer } from 'node:http'
import { describe, test } from 'node:test'

import { DeploymentEvent, Monitor } from '../index.js'
import { catchCased } from './support.mjs'

/** A loopback exporter whose page `n` (from 1) is `pages(n)`. */
async function exporter(pages) {
  let n = 0
  const server = createServer((req, res) => {
    n += 1
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
    res.end(pages(n))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() }
}

const page = (errors, requests) =>
  '# TYPE http_requests_total counter\n' +
  `http_requests_total{code="200"} ${requests - errors}\n` +
  `http_requests_total{code="500"} ${errors}\n`

const config = (url) => ({
  schedule: { intervals: ['20ms'], cooldown: '300ms', max_duration: '20s' },
  verdict: { min_samples: 3 },
  sources: [
    {
      type: 'scrape',
      name: 'app',
      url: `${url}/metrics`,
      counts: {
        http: {
          errors: { counter: 'http_requests_total', match: { code: { regex: '5..' } } },
          requests: { counter: 'http_requests_total' },
        },
      },
    },
  ],
  detectors: [{ type: 'error_rate', metric: 'app.http' }],
})

const event = () =>
  new DeploymentEvent({ deployment_request: 'Deploy', repository_full_name: 'acme/shop', event_metadata: { environment: 'prod' } })

describe('a scrape source in a session without checks', () => {
  test('rising scraped error counts make the deployment unhealthy; steady ones pass', async () => {
    // 0.5 % errors for three pages, then 10 %: each page adds 1000 requests.
    const bad = await exporter((n) => (n <= 3 ? page(5 * n, 1000 * n) : page(15 + 100 * (n - 3), 3000 + 1000 * (n - 3))))
    try {
      const report = await new Monitor(config(bad.url), { baselines: { 'app.http': { errors: 10, requests: 2000 } } }).run(event())
      assert.equal(report.verdict, 'unhealthy', report.reason)
      assert.ok(report.findings.some((f) => f.metric === 'app.http' && f.detector === 'error_rate'))
      assert.ok(report.ticks.every((t) => t.checks.length === 0))
    } finally {
      bad.close()
    }
    const good = await exporter((n) => page(5 * n, 1000 * n))
    try {
      const report = await new Monitor(config(good.url), { baselines: { 'app.http': { errors: 10, requests: 2000 } } }).run(event())
      assert.equal(report.verdict, 'healthy', report.reason)
    } finally {
      good.close()
    }
  })

  test('a bad source is a validation error naming its field', () => {
    const c = config('http://127.0.0.1:1')
    c.sources[0].url = 'not a url'
    const e = catchCased(() => new Monitor(c), 'validation')
    assert.ok(e.fields.some((f) => f.field.startsWith('sources[0].url')), JSON.stringify(e.fields))
  })
})

describe('canary vs control', () => {
  test('the canary is judged against the control service live', async () => {
    const stable = await exporter((n) => page(5 * n, 1000 * n)) // 0.5 % errors
    const slowCanary = await exporter((n) => page(100 * n, 1000 * n)) // 10 % errors
    const goodCanary = await exporter((n) => page(5 * n, 1000 * n))
    const withControl = (url) => {
      const c = config(url)
      c.sources[0].control_url = `${stable.url}/metrics`
      return c
    }
    try {
      const bad = await new Monitor(withControl(slowCanary.url)).run(event())
      assert.equal(bad.verdict, 'unhealthy', bad.reason)
      assert.match(bad.baselines['app.http'], /^the control track/)
      const good = await new Monitor(withControl(goodCanary.url)).run(event())
      assert.equal(good.verdict, 'healthy', good.reason)
    } finally {
      stable.close()
      slowCanary.close()
      goodCanary.close()
    }
  })
})
