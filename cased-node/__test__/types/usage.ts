// Type-checked (never run) by types.test.mjs against the generated index.d.ts. Each
// `@ts-expect-error` line must fail to compile, or the check fails.
import {
  Client,
  DeploymentEvent,
  Monitor,
  Session,
  Updates,
  enableLogging,
  runCheck,
  type CasedErrorInfo,
  type CheckConfig,
  type CheckOutcome,
  type CheckOutcomeInit,
  type ClientOptions,
  type DeploymentEventInit,
  type DeploymentResponse,
  type FieldError,
  type MonitorConfig,
  type MonitorOptions,
  type Report,
  type RollbackContext,
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
