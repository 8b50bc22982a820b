// Post a deployment event from Node: `node examples/node/notify.mjs BASE_URL`.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Client, DeploymentEvent } = require('../../cased-node')

const event = new DeploymentEvent({
  deployment_request: 'Deploy checkout v1.4.2 (from Node)',
  repository_full_name: 'acme/checkout',
  commit_sha: '4f2a9c1d',
  ref: 'refs/heads/main',
  status: 'running',
  event_metadata: { environment: 'production', version: '1.4.2' },
})
const client = new Client({ apiKey: 'demo-key', baseUrl: process.argv[2] })
const answer = await client.createDeployment(event)
console.log(`[node] HTTP ${answer.status} ${JSON.stringify(answer.body)}`)
