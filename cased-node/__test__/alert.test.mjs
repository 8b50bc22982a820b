import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { signWebhook, verifyWebhookSignature } from '../index.js'

const SECRET = 'whsec_test'
const NOW = 1_700_000_000

/** Asserts `fn` throws an Error with `code` and an empty `fields`. */
function rejected(fn, code) {
  assert.throws(fn, (e) => e instanceof Error && e.code === code && Array.isArray(e.fields) && e.fields.length === 0)
}

describe('webhook signatures', () => {
  test('the signature is the core one (reference value from Python hmac)', () => {
    assert.equal(signWebhook(SECRET, '1700000000', '{}'), 'v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91')
    assert.equal(signWebhook(SECRET, NOW, Buffer.from('{}')), signWebhook(SECRET, '1700000000', '{}'))
  })

  test('round trip: a signed body verifies, as a string, a Buffer and a Uint8Array', () => {
    const body = JSON.stringify({ schema: 'cased.notification/v1', id: 'n-1' })
    const sig = signWebhook(SECRET, String(NOW), body)
    assert.equal(verifyWebhookSignature(SECRET, String(NOW), body, sig, 300, NOW), undefined)
    verifyWebhookSignature(SECRET, NOW, Buffer.from(body), sig, 300, NOW + 299)
    verifyWebhookSignature(SECRET, String(NOW), new TextEncoder().encode(body), `v1=${'0'.repeat(64)}, ${sig}`, null, NOW)
  })

  test('tampered body, wrong secret, stale or future timestamp, malformed headers', () => {
    const body = '{"severity":"critical"}'
    const sig = signWebhook(SECRET, String(NOW), body)
    rejected(() => verifyWebhookSignature(SECRET, String(NOW), '{"severity":"info"}', sig, 300, NOW), 'mismatch')
    rejected(() => verifyWebhookSignature('other', String(NOW), body, sig, 300, NOW), 'mismatch')
    rejected(() => verifyWebhookSignature(SECRET, String(NOW), body, sig, 300, NOW + 301), 'outside_tolerance')
    rejected(() => verifyWebhookSignature(SECRET, String(NOW), body, sig, 300, NOW - 301), 'outside_tolerance')
    rejected(() => verifyWebhookSignature(SECRET, String(NOW), body, sig), 'outside_tolerance') // now is 2026+
    rejected(() => verifyWebhookSignature(SECRET, 'yesterday', body, sig, 300, NOW), 'malformed_timestamp')
    rejected(() => verifyWebhookSignature(SECRET, String(NOW), body, 'sha256=abc', 300, NOW), 'malformed_signature')
  })

  test('a fresh signature verifies against the real clock with the default tolerance', () => {
    const ts = String(Math.floor(Date.now() / 1000))
    verifyWebhookSignature(SECRET, ts, 'x', signWebhook(SECRET, ts, 'x'))
  })
})

describe('alert channels through the monitor', () => {
  test('a failing session delivers to a JS notifier and to the in-app stream', async (t) => {
    const { DeploymentEvent, Monitor } = await import('../index.js')
    // Notifier functions never keep the process alive by themselves (like check functions):
    // a server would; here a timer does, until the test ends.
    const alive = setInterval(() => {}, 60_000)
    t.after(() => clearInterval(alive))
    let notified
    const delivered = new Promise((resolve) => (notified = resolve))
    const monitor = new Monitor(
      {
        schedule: { intervals: ['20ms'], max_duration: '20s' },
        alerts: {
          channels: [
            { name: 'pager', type: 'custom' },
            { name: 'dashboard', type: 'inapp' },
          ],
          routes: [{ name: 'default', channels: ['pager', 'dashboard'], group_wait: '10ms' }],
        },
      },
      {
        checks: { web: () => ({ status: 'fail', message: 'HTTP 503' }) },
        notifiers: { pager: async (n) => notified(n) },
      },
    )
    const stream = monitor.alerts('dashboard')
    const report = await monitor.run(
      new DeploymentEvent({ deployment_request: 'Deploy v2', repository_full_name: 'acme/shop', status: 'running' }),
    )
    assert.equal(report.verdict, 'unhealthy')
    assert.equal(report.alerts.length, 1)
    assert.equal(report.alerts[0].severity, 'critical')
    assert.deepEqual(report.alert_failures, [])

    const n = await delivered
    assert.equal(n.schema, 'cased.notification/v1')
    assert.equal(n.status, 'firing')
    assert.equal(n.severity, 'critical')
    assert.equal(n.deployment.repository, 'acme/shop')
    assert.equal(n.alerts[0].key, report.alerts[0].key)

    for await (const item of stream) {
      assert.ok(!('skipped' in item))
      assert.equal(item.id, n.id, 'the same notification on both channels')
      assert.equal(item.alerts[0].title, report.alerts[0].title)
      break
    }
  })

  test('Slack messages escape mentions and links from the deployment', async (t) => {
    const { DeploymentEvent, Monitor } = await import('../index.js')
    const { startApi, reply } = await import('./support.mjs')
    const slack = await startApi((_req, res) => reply(res, 200, 'ok'))
    t.after(() => slack.close())
    const received = slack.nextRequest()
    const monitor = new Monitor(
      {
        schedule: { intervals: ['20ms'], max_duration: '20s' },
        alerts: {
          channels: [{ name: 'ops', type: 'slack', webhook_url: `${slack.url}/services/T/B/x` }],
          routes: [{ name: 'default', channels: ['ops'], group_wait: '10ms' }],
        },
      },
      { checks: { web: () => ({ status: 'fail', message: 'HTTP 503' }) } },
    )
    const report = await monitor.run(
      new DeploymentEvent({
        deployment_request: '<!channel> <https://evil.example|Approve rollback>',
        status: 'running',
        event_metadata: { environment: '<!channel>' },
      }),
    )
    assert.equal(report.verdict, 'unhealthy')
    const body = JSON.parse((await received).body)
    const headline =
      '[CRITICAL] Deployment unhealthy — &lt;!channel&gt; &lt;https://evil.example|Approve rollback&gt; (&lt;!channel&gt;)'
    assert.equal(body.text, headline)
    assert.equal(body.attachments[0].fallback, headline)
    const strings = (v) =>
      typeof v === 'string' ? [v] : v && typeof v === 'object' ? Object.values(v).flatMap(strings) : []
    for (const s of strings(body)) assert.ok(!s.includes('<') && !s.includes('>'), s)
  })

  test('PagerDuty gets an Events API v2 trigger', async (t) => {
    const { DeploymentEvent, Monitor } = await import('../index.js')
    const { startApi, reply } = await import('./support.mjs')
    const pd = await startApi((_req, res) => reply(res, 202, { status: 'success' }))
    t.after(() => pd.close())
    const received = pd.nextRequest()
    const monitor = new Monitor(
      {
        schedule: { intervals: ['20ms'], max_duration: '20s' },
        alerts: {
          channels: [{ name: 'pager', type: 'pagerduty', routing_key: 'R0UTINGKEY0123456789', url: `${pd.url}/v2/enqueue` }],
          routes: [{ name: 'default', channels: ['pager'], group_wait: '10ms' }],
        },
      },
      { checks: { web: () => ({ status: 'fail', message: 'HTTP 503' }) } },
    )
    const report = await monitor.run(
      new DeploymentEvent({ deployment_request: 'Deploy v2', repository_full_name: 'acme/shop', status: 'running', event_metadata: { environment: 'prod' } }),
    )
    assert.equal(report.verdict, 'unhealthy')
    const request = await received
    assert.equal(request.url, '/v2/enqueue')
    const sent = JSON.parse(request.body)
    assert.equal(sent.routing_key, 'R0UTINGKEY0123456789')
    assert.equal(sent.event_action, 'trigger')
    assert.equal(sent.payload.severity, 'error')
    assert.equal(sent.payload.source, 'acme/shop')
    assert.equal(sent.payload.group, 'prod')
  })

  test('Alertmanager gets labelled v2 alerts', async (t) => {
    const { DeploymentEvent, Monitor } = await import('../index.js')
    const { startApi, reply, catchCased, fieldNames } = await import('./support.mjs')
    const am = await startApi((_req, res) => reply(res, 200, {}))
    t.after(() => am.close())
    const received = am.nextRequest()
    const alerts = (url) => ({
      channels: [{ name: 'am', type: 'alertmanager', url, labels: { team: 'payments' } }],
      routes: [{ name: 'default', channels: ['am'], group_wait: '10ms' }],
    })
    const monitor = new Monitor(
      { schedule: { intervals: ['20ms'], max_duration: '20s' }, alerts: alerts(am.url) },
      { checks: { web: () => ({ status: 'fail', message: 'HTTP 503' }) } },
    )
    const report = await monitor.run(
      new DeploymentEvent({ deployment_request: 'Deploy v2', repository_full_name: 'acme/shop', status: 'running', event_metadata: { environment: 'prod' } }),
    )
    assert.equal(report.verdict, 'unhealthy')
    const request = await received
    assert.equal(request.url, '/api/v2/alerts')
    const [sent] = JSON.parse(request.body)
    assert.equal(sent.labels.alertname, 'CasedDeployment')
    assert.equal(sent.labels.severity, 'critical')
    assert.deepEqual([sent.labels.repository, sent.labels.environment, sent.labels.team], ['acme/shop', 'prod', 'payments'])
    const e = catchCased(() => new Monitor({ alerts: alerts('alertmanager:9093') }), 'validation')
    assert.ok(fieldNames(e).includes('alerts.channels[0].url'), fieldNames(e).join())
  })

  test('configuration errors name the option or the channel', async () => {
    const { Monitor } = await import('../index.js')
    const { catchCased, fieldNames } = await import('./support.mjs')
    let e = catchCased(() => new Monitor({}, { notifiers: { pager: 'not a function' } }), 'validation')
    assert.deepEqual(fieldNames(e), ['notifiers.pager'])
    e = catchCased(() => new Monitor({ alerts: { channels: [{ name: 'x', type: 'pigeon' }] } }), 'validation')
    assert.match(e.message, /pigeon/)
    e = catchCased(() => new Monitor({}).alerts('dashboard'), 'validation')
  })
})
