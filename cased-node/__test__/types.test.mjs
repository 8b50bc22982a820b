import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { test } from 'node:test'

import ts from 'typescript'

import { closedPort } from './support.mjs'

const require = createRequire(import.meta.url)
const dtsPath = new URL('../index.d.ts', import.meta.url).pathname
const binding = require('../index.js')

/**
 * The exported declarations of index.d.ts: value names, members of each class (symbol-named
 * ones such as `[Symbol.asyncIterator]` apart, by their text), and the property names of each
 * interface.
 */
function declarations() {
  const source = ts.createSourceFile(dtsPath, readFileSync(dtsPath, 'utf8'), ts.ScriptTarget.Latest, true)
  const values = new Set()
  const interfaces = new Set()
  const classes = new Map()
  const properties = new Map()
  const exported = (node) => node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)
  for (const node of source.statements) {
    if (!exported(node)) continue
    if (ts.isClassDeclaration(node)) {
      values.add(node.name.text)
      const members = { instance: new Set(), statics: new Set(), symbols: new Set() }
      for (const m of node.members) {
        if (!m.name) continue
        if (ts.isComputedPropertyName(m.name)) {
          members.symbols.add(m.name.expression.getText(source))
          continue
        }
        const isStatic = m.modifiers?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword)
        ;(isStatic ? members.statics : members.instance).add(m.name.text)
      }
      classes.set(node.name.text, members)
    } else if (ts.isFunctionDeclaration(node)) {
      values.add(node.name.text)
    } else if (ts.isVariableStatement(node)) {
      for (const d of node.declarationList.declarations) values.add(d.name.text)
    } else if (ts.isInterfaceDeclaration(node)) {
      interfaces.add(node.name.text)
      properties.set(node.name.text, new Set(node.members.map((m) => m.name.text)))
    } else if (ts.isTypeAliasDeclaration(node)) {
      interfaces.add(node.name.text)
    } else {
      assert.fail(`unexpected export kind ${ts.SyntaxKind[node.kind]}`)
    }
  }
  return { values, interfaces, classes, properties }
}

const sorted = (iterable) => [...iterable].sort()

test('index.d.ts declares every export of index.js, and nothing that is not there', () => {
  const { values } = declarations()
  assert.deepEqual(sorted(values), sorted(Object.keys(binding)))
  for (const name of ['AlertStream', 'BaselineStore', 'Client', 'DeploymentEvent', 'Detector', 'History', 'HostSource', 'Monitor', 'PrometheusSource', 'Session', 'Updates', 'compare', 'compareErrorRates', 'enableLogging', 'renderReport', 'runCheck', 'signWebhook', 'verifyWebhookSignature']) {
    assert.ok(values.has(name), name)
  }
})

test('every class member at run time is declared, and every declared member exists', () => {
  const { classes } = declarations()
  for (const [name, declared] of classes) {
    const cls = binding[name]
    const instance = Object.getOwnPropertyNames(cls.prototype).filter((k) => k !== 'constructor')
    const statics = Object.getOwnPropertyNames(cls).filter((k) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(k))
    assert.deepEqual(sorted(instance), sorted([...declared.instance].filter((k) => k !== 'constructor')), `${name} members`)
    assert.deepEqual(sorted(statics), sorted(declared.statics), `${name} statics`)
  }
  assert.deepEqual([...classes.get('Updates').symbols], ['globalThis.Symbol.asyncIterator'])
  assert.deepEqual([...classes.get('AlertStream').symbols], ['globalThis.Symbol.asyncIterator'])
  assert.deepEqual([...classes.get('Session').symbols], [])
})

test('the object and error shapes are declared', () => {
  const { interfaces } = declarations()
  for (const name of [
    'AlertChannelConfig',
    'AlertFailure',
    'AlertItem',
    'AlertPayload',
    'AlertRouteConfig',
    'AlertsConfig',
    'AlertSummary',
    'BaselineComparison',
    'BaselineComparisonSettings',
    'BrownForsythe',
    'CasedErrorInfo',
    'CheckConfig',
    'CheckOutcome',
    'CheckOutcomeInit',
    'CheckResult',
    'ClientOptions',
    'CommandCheckConfig',
    'CommandExpect',
    'CompareOptions',
    'Counters',
    'Counts',
    'DeploymentEventInit',
    'DeploymentInfo',
    'DeploymentResponse',
    'DeliveryConfig',
    'DeploymentFilter',
    'DeploymentRecord',
    'DetectorConfig',
    'DnsCheckConfig',
    'ErrorRateComparison',
    'ErrorRateSettings',
    'FieldError',
    'Finding',
    'HttpCheckConfig',
    'HodgesLehmann',
    'HttpExpect',
    'JsonExpect',
    'MannWhitney',
    'MetricSummary',
    'MonitorConfig',
    'MonitorOptions',
    'Notification',
    'PostgresCheckConfig',
    'PrometheusSourceOptions',
    'RedisCheckConfig',
    'Report',
    'RollbackContext',
    'RollbackRecord',
    'Sample',
    'ScheduleConfig',
    'SkippedUpdates',
    'StatusUpdate',
    'TailTest',
    'TcpCheckConfig',
    'TickRecord',
    'UpdateItem',
    'VerdictConfig',
  ]) {
    assert.ok(interfaces.has(name), name)
  }
})

test('the declared result shapes are the objects the core hands over, key for key', async () => {
  const { properties } = declarations()
  const { DeploymentEvent, Detector, HostSource, Monitor, compare, compareErrorRates, runCheck } = binding
  const contexts = []
  let pushed = false // the check fails (ending the session) only once a sample was pushed
  const monitor = new Monitor(
    { schedule: { intervals: ['25ms'], max_duration: '20s' } },
    {
      checks: { web: () => ({ status: pushed ? 'fail' : 'pass', message: 'HTTP 503' }) },
      onRollback: (c) => void contexts.push(c),
    },
  )
  const session = await monitor.start(new DeploymentEvent({ deployment_request: 'Deploy', status: 'running' }))
  session.push('p99_ms', 120)
  pushed = true
  const updates = []
  for await (const update of session.updates()) updates.push(update)
  const report = await session.wait()
  const port = await closedPort()
  const outcome = await runCheck({ name: 'web', type: 'http', url: `http://127.0.0.1:${port}/` })
  const finding = new Detector({ type: 'threshold', metric: 'cpu', upper: 90 }).update(95)
  const baseline = Array.from({ length: 20 }, (_, i) => 100 + (i % 5))
  const comparison = compare(baseline, baseline.map((x) => x * 2), { tail_quantile: 0.9 })
  const rates = compareErrorRates([10, 10_000], [100, 10_000])

  const shapes = [
    ['Report', report],
    ['Counters', report.counters],
    ['TickRecord', report.ticks[0]],
    ['CheckResult', report.ticks[0].checks[0]],
    ['MetricSummary', report.metrics.p99_ms],
    ['RollbackRecord', report.rollback],
    ['StatusUpdate', updates[0]],
    ['DeploymentInfo', updates[0].deployment],
    ['RollbackContext', contexts[0]],
    ['CheckOutcome', { ...outcome, evidence: null }],
    ['Finding', (({ index, ...rest }) => (assert.equal(index, 0), rest))(finding)],
    ['Sample', new HostSource().sample()[0]],
    ['BaselineComparison', comparison],
    ['MannWhitney', comparison.location],
    ['HodgesLehmann', comparison.shift],
    ['BrownForsythe', comparison.spread],
    ['TailTest', comparison.tail],
    ['Finding', comparison.finding],
    ['ErrorRateComparison', rates],
    ['Counts', rates.baseline],
    ['Finding', rates.finding],
  ]
  // Keys declared optional (`index?`-style: present only when known) are compared apart.
  const optional = { Finding: ['index', 'tick'] }
  for (const [name, object] of shapes) {
    assert.ok(object, `${name} present`)
    const skip = optional[name] ?? []
    const keys = Object.keys(object).filter((k) => !skip.includes(k))
    const declared = [...properties.get(name)]
    assert.deepEqual(sorted(keys), sorted(declared.filter((k) => !skip.includes(k))), name)
    for (const k of skip) assert.ok(declared.includes(k), `${name}.${k} declared`)
  }
  assert.equal(typeof outcome.evidence, 'object', 'the HTTP check gives its evidence (timings) even when it passes')
})

test('a strict TypeScript program using the API type-checks, and misuse is caught', () => {
  const usage = new URL('./types/usage.ts', import.meta.url).pathname
  const program = ts.createProgram([usage], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    lib: ['lib.es2022.d.ts'],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
  })
  const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : ''
    return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
  assert.deepEqual(diagnostics, [])
})
