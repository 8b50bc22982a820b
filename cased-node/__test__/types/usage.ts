// Type-checked (never run) by types.test.mjs against the generated index.d.ts. Each
// `@ts-expect-error` line must fail to compile, or the check fails.
import {
  BaselineStore,
  Client,
  DeploymentEvent,
  Detector,
  History,
  HostSource,
  Monitor,
  PrometheusSource,
  Session,
  Updates,
  compare,
  compareErrorRates,
  segment,
  enableLogging,
  renderReport,
  runCheck,
  signWebhook,
  verifyWebhookSignature,
  type BaselineComparison,
  type Segmentation,
  type CasedErrorInfo,
  type CheckConfig,
  type CheckOutcome,
  type CheckOutcomeInit,
  type ClientOptions,
  type DeploymentEventInit,
  type DeploymentResponse,
  type ErrorRateComparison,
  type FieldError,
  type Finding,
  type DeploymentRecord,
  type Notification,
  type MonitorConfig,
  type MonitorOptions,
  type Report,
  type RollbackContext,
  type PrometheusSourceOptions,
  type Sample,
  type StatusUpdate,
  type UpdateItem,
} from '../../index.js'

type Status = 'pending' | 'running' | 'success' | 'failure' | 'cancelled'

const init: DeploymentEventInit = {
  deployment_request: 'Deploy v1.4.2',
  repository_full_name: 'acme/shop',
  status: 'running',
  external_url: 'https://ci.example.com/runs/7',
  commit_sha: 'abcdef1',
  commit_message: 'Fix',
  ref: 'refs/heads/main',
  event_metadata: { environment: 'production', replicas: 3 },
}
const event = new DeploymentEvent(init)
export const status: Status = event.status
export const fields: [string, string | null, string | null, string | null, string | null] = [
  event.deploymentRequest,
  event.repositoryFullName,
  event.ref,
  event.environment,
  event.correlationId,
]
export const metadata: Record<string, unknown> | null = event.eventMetadata
export const wire: DeploymentEventInit = event.toJSON()
export const text: string = event.toJson()
export const parsed: DeploymentEvent[] = [
  DeploymentEvent.fromJson(text),
  DeploymentEvent.fromJson(new Uint8Array([123, 125])),
  DeploymentEvent.fromEnv({ GITHUB_ACTIONS: 'true' }),
  DeploymentEvent.fromEnv(),
]

const options: ClientOptions = { apiKey: 'k', baseUrl: 'http://127.0.0.1:8080', timeoutMs: 300, maxRetries: 0 }
const client = new Client(options)
export const endpoint: string = client.endpoint

export async function post(): Promise<number> {
  try {
    const response: DeploymentResponse = await client.createDeployment(event)
    return response.status + response.attempts
  } catch (e) {
    const err = e as Error & CasedErrorInfo
    const problems: FieldError[] = err.fields
    return err.status ?? problems.length + err.code.length
  }
}

enableLogging('cased_core=debug')
enableLogging()

// @ts-expect-error: the object takes the wire names, not camelCase
new DeploymentEvent({ deploymentRequest: 'Deploy' })
// @ts-expect-error: status is one of five names
new DeploymentEvent({ deployment_request: 'Deploy', status: 'done' })
// @ts-expect-error: deployment_request is required
new DeploymentEvent({ ref: 'main' })
// @ts-expect-error: the timeout option is timeoutMs
new Client({ timeout: 5 })
// @ts-expect-error: createDeployment takes a DeploymentEvent
client.createDeployment(init)
// @ts-expect-error: getters are read-only
event.commitSha = 'abcdef1'
// @ts-expect-error: fromJson takes text or bytes
DeploymentEvent.fromJson({ deployment_request: 'Deploy' })

const config: MonitorConfig = {
  schedule: { intervals: ['10s', '30s', '1m', '5m'], cooldown: '30m', max_duration: '2h', jitter: '0s' },
  checks: [
    { name: 'web', type: 'http', url: 'https://example.test/health', expect: { status: [200, '2xx'], max_latency: '500ms' } },
  ],
  verdict: { failure_limit: 0, consecutive_error_limit: 4, min_samples: 5, no_data: 'extend' },
  detectors: [],
  alerts: {},
}
const passing: CheckOutcomeInit = { status: 'pass', message: 'ok', evidence: { depth: 3 }, latencyMs: 2 }
const monitorOptions: MonitorOptions = {
  checks: { queue: async () => passing, sync: () => ({ status: 'warn' }) },
  onRollback: async (context: RollbackContext) => {
    const said: string[] = [context.sessionId, context.reason, context.event.deployment_request]
    if (said.length === 0) throw new Error('unreachable')
  },
}
const monitor = new Monitor(config, monitorOptions)
export const defaults = new Monitor()
export const names: string[] = monitor.checkNames

export async function watch(): Promise<number> {
  const session: Session = await monitor.start(event)
  const id: string = session.id
  const updates: Updates = session.updates()
  let seen = 0
  for await (const item of updates) {
    const any: UpdateItem = item
    if ('skipped' in any) {
      seen += any.skipped
      continue
    }
    const update: StatusUpdate = any
    seen += update.tick + update.checks.length + update.elapsed_ms
    if (update.next_tick_in_ms === null || update.phase === 'finished') break
  }
  session.push('p99_ms', 120)
  session.complete()
  session.fail()
  session.cancel()
  const report: Report = await session.wait()
  const maybe: Report | null = session.report()
  const finished: boolean = session.isFinished
  const once: Report = await monitor.run(event)
  const check: CheckConfig = { name: 'web', type: 'http', url: 'http://127.0.0.1/', timeout: '2s' }
  const outcome: CheckOutcome = await runCheck(check)
  return (
    seen +
    id.length +
    report.ticks.length +
    (report.cooldown_started_ms ?? 0) +
    (report.rollback?.elapsed_ms ?? 0) +
    (maybe?.duration_ms ?? 0) +
    Number(finished) +
    once.counters.errors +
    outcome.latency_ms
  )
}

// @ts-expect-error: configuration keys are the wire names
new Monitor({ schedule: { maxDuration: '2h' } })
// @ts-expect-error: a custom check's status is one of four names
new Monitor({}, { checks: { web: () => ({ status: 'ok' }) } })
// @ts-expect-error: a custom check is a function
new Monitor({}, { checks: { web: { status: 'pass' } } })
// @ts-expect-error: start takes a DeploymentEvent
monitor.start(init)
// @ts-expect-error: a check configuration needs its type
runCheck({ name: 'web', url: 'http://127.0.0.1/' })
// @ts-expect-error: the report is read-only data, not a Session
export const notASession: Session = await monitor.run(event)

// Issue 4: every check type is a CheckConfig.
export const checkConfigs: CheckConfig[] = [
  { name: 'web', type: 'http', url: 'http://127.0.0.1/', expect: { status: ['2xx'], json: [{ pointer: '/ok', equals: true }] } },
  { name: 'tcp', type: 'tcp', host: '127.0.0.1', port: 6379, send: 'PING\r\n', expect: 'PONG' },
  { name: 'dns', type: 'dns', host: 'example.test', addresses: ['127.0.0.1'] },
  { name: 'db', type: 'postgres', url: 'postgres://app@127.0.0.1/app', password: 'p', tls: 'prefer' },
  { name: 'cache', type: 'redis', url: 'redis://127.0.0.1' },
  { name: 'ok', type: 'command', program: 'true', args: [], expect: { exit_code: 0 } },
]
// @ts-expect-error: a tcp check needs a port
export const noPort: CheckConfig = { name: 'tcp', type: 'tcp', host: '127.0.0.1' }

// Issue 5: detectors.
const detector = new Detector({ type: 'spike', metric: 'latency', threshold: 5 })
const found: Finding | null = detector.update(1.5)
export const position: number | undefined = detector.update(2.5)?.index
export const batch: Finding[] = detector.detect(new Float64Array([1, 2])).concat(detector.detect([3]))
export const score: number = detector.score + (found?.effect_size ?? 0)
// @ts-expect-error: the type is one of the detectors
new Detector({ type: 'magic', metric: 'latency' })
const shifted = new Detector({ type: 'baseline', metric: 'latency', allowed_change: 0.1 })
shifted.setBaseline(new Float64Array([1, 2, 3]))
shifted.setBaseline([1, 2, 3])
const comparison: BaselineComparison = compare([1, 2], new Float64Array([3, 4]), { allowed_change: 0.1, direction: 'either', tail_quantile: 0.95 }, { metric: 'latency' })
export const shift: number = comparison.shift.shift + comparison.location.u + (comparison.spread?.p_value ?? 0) + (comparison.relative_change ?? 0) + (comparison.tail?.current_beyond ?? 0)
export const quietly: boolean = compare([1], [2]).finding === null && compare([1], [2], null).location_alarm && compare([1], [2]).tail_alarm
const rates: ErrorRateComparison = compareErrorRates([1, 100], [5, 100], { min_increase: 0.01, name: 'http_errors' })
export const rateFinding: Finding | null = rates.finding
export const counted: number = rates.baseline.errors + rates.current.requests + (rates.alarm ? rates.p_value : rates.z)
// @ts-expect-error: counts are an [errors, requests] pair
compareErrorRates([1, 100, 3], [5, 100])
// @ts-expect-error: the directions are named
compare([1], [2], { direction: 'up' })

// Offline segmentation.
const parts: Segmentation = segment(new Float64Array([1, 1, 5, 5]), { cost: 'normal_mean', penalty: 'bic', min_size: 1 })
export const firstChange: number | undefined = parts.changes[0]
export const lastMean: number = parts.segments[parts.segments.length - 1].mean + parts.penalty + segment([1, 2], { penalty: 3.5 }).total_cost
// @ts-expect-error: the costs are named
segment([1, 2], { cost: 'median' })

// Issue 6: webhook signatures.
verifyWebhookSignature('s', '1700000000', new Uint8Array([123, 125]), signWebhook('s', 1700000000, '{}'), 300, 1700000000)

// Issue 6: alert channels, custom notifiers, the in-app stream.
const alerting = new Monitor(
  {
    detectors: [{ type: 'baseline', metric: 'latency', allowed_change: 0.2 }],
    alerts: {
      channels: [
        { name: 'hooks', type: 'webhook', url: 'https://hooks.example/cased', secret_env: 'SECRET' },
        { name: 'dashboard', type: 'inapp' },
        { name: 'pager', type: 'custom', send_resolved: true },
      ],
      routes: [{ name: 'default', channels: ['hooks', 'dashboard', 'pager'], min_severity: 'warning', group_wait: '1s' }],
      delivery: { max_retries: 2, timeout: '5s' },
    },
  },
  { notifiers: { pager: async (n: Notification) => void n.alerts[0]?.findings.length }, history: History.inMemory() },
)
export async function follow(): Promise<string[]> {
  const seen: string[] = []
  for await (const item of alerting.alerts('dashboard')) {
    if ('skipped' in item) continue
    seen.push(item.id, item.severity, ...item.alerts.map((a) => a.title))
  }
  return seen
}
// @ts-expect-error: channel types are named
new Monitor({ alerts: { channels: [{ name: 'x', type: 'pigeon' }] } })

// Issue 7: history and reports.
export async function history(): Promise<string> {
  const h = new History('/tmp/h.db')
  const rows: DeploymentRecord[] = await h.deployments({ repository: 'acme/shop', since_unix_ms: Date.now() - 1000, limit: 5 })
  const counts = await h.verdictCounts('week', { environment: 'production' })
  const ttd = await h.timeToDetect()
  const healthy: DeploymentRecord[] = await h.lastHealthy(5)
  const owner: DeploymentRecord | null = await h.deploymentOfFinding('f')
  const report: Report | null = await h.report(rows[0]?.session_id ?? '')
  return [counts[0]?.success_rate, ttd[0]?.time_to_detect_ms, healthy.length, owner?.session_id, report && renderReport(report, 'html')].join()
}
// @ts-expect-error: the bucket is a day or a week
History.inMemory().verdictCounts('month')

// Metrics: Prometheus and host samples, baseline stores.
export async function metrics(): Promise<number> {
  const options: PrometheusSourceOptions = { bearerToken: 'token', timeoutMs: 5000 }
  const prometheus = new PrometheusSource('http://prometheus:9090', options)
  const now: Sample[] = await prometheus.query('rps', 'rate(http_requests_total[1m])')
  const range: Sample[] = await prometheus.queryRange('rps', 'rate(http_requests_total[1m])', 0, 60, 15)
  const host: Sample[] = new HostSource().sample()
  new Monitor({ detectors: [{ type: 'baseline', metric: 'web.latency_ms' }] }, { baselineStore: BaselineStore.sqlite('/tmp/b.db') })
  new Monitor({}, { baselineStore: BaselineStore.inMemory() })
  return now[0]!.value + (range[0]?.labels['job']?.length ?? 0) + host.length
}
// @ts-expect-error: the step is a number of seconds
new PrometheusSource('http://p').queryRange('m', 'q', 0, 60, '15s')
// @ts-expect-error: a baseline store is a BaselineStore
new Monitor({}, { baselineStore: '/tmp/b.db' })
