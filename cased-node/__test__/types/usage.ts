// Type-checked (never run) by types.test.mjs against the generated index.d.ts. Each
// `@ts-expect-error` line must fail to compile, or the check fails.
import {
  Client,
  DeploymentEvent,
  enableLogging,
  type CasedErrorInfo,
  type ClientOptions,
  type DeploymentEventInit,
  type DeploymentResponse,
  type FieldError,
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
