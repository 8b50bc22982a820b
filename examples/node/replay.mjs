// Backtest a policy: replay a recorded deployment through cased's session pipeline.
//
//     node examples/node/replay.mjs
//
// An hour of p95 latency before the deploy (the pre-deploy baseline) and 30 minutes after it,
// where latency rises by 25 %. The replay runs on a virtual clock: nothing waits, nothing is sent.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { DeploymentEvent, Monitor } = require('../../cased-node')

const T0 = 1_764_763_200 // when the deployment started (seconds since the Unix epoch)
const p95 = (t) => (t >= 300 ? 125 : 100) + 3 * Math.sin(t / 37) + 2 * Math.sin(t / 11)
const samples = []
for (let t = -3600; t < 1800; t += 10) samples.push({ metric: 'api.p95_ms', timestamp: T0 + t, value: p95(t) })

const monitor = new Monitor({ detectors: [{ type: 'baseline', metric: 'api.p95_ms', allowed_change: 0.1 }] })
const event = new DeploymentEvent({
  deployment_request: 'Deploy v1.4.2',
  repository_full_name: 'acme/checkout',
  event_metadata: { environment: 'production' },
})
const report = await monitor.replay(event, { started_at: T0, samples })
console.log('verdict:', report.verdict, '-', report.reason)
console.log('baseline:', report.baselines['api.p95_ms'])
for (const f of report.findings) console.log(`finding at sample ${f.index} (tick ${f.tick}): ${f.message}`)
