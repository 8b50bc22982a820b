// Binding fuzz (RELIABILITY.md): fast-check over every public constructor and entry point.
//
// The property, for any generated input: the call returns, or throws a cased error — `code`
// 'validation' with every problem naming a field, or the code the API documents for that call
// (a rejected webhook signature's own codes) — or, for a plain argument of the wrong type (a
// number where a string is declared), napi's own argument error (`InvalidArg`,
// `StringExpected`, ..., see CasedErrorInfo). A document argument (an event, a configuration, a
// recording) never gets napi's error: whatever it holds, a problem is a 'validation' error
// naming its path. Never a crash of the process.
//
// Runs per target: CASED_FUZZ_CASES (the variable the Rust property tests read), default 200.
// A long run: `CASED_FUZZ_CASES=100000 node --test __test__/fuzz.test.mjs`.
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'

import fc from 'fast-check'

import {
  Client, compare, compareErrorRates, DeploymentEvent, Detector, Monitor, PrometheusSource, renderReport,
  runCheck, segment, signWebhook, verifyWebhookSignature,
} from '../index.js'

const RUNS = Number(process.env.CASED_FUZZ_CASES ?? 200)
const OPTIONS = { numRuns: RUNS }
/** Executions per target, printed at the end, for RELIABILITY.md. */
const EXECUTIONS = {}

// ------------------------------------------------------------------------------- generators

/** Any UTF-16 code unit: NUL and lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
const text = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 20 }),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '\0', '\ud800', 'a\udfffb', ' ', '\t', '1h', '10s', '-1s', '2xx', 'http://', 'é'.repeat(300)),
)
const number = fc.oneof(
  fc.double(), // NaN, ±Infinity, -0 included
  fc.integer(),
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 2 ** 53, 2 ** 64, -(2 ** 63), Number.MAX_VALUE, Number.MIN_VALUE),
)
const scalar = fc.oneof(fc.constant(null), fc.constant(undefined), fc.boolean(), number, text, fc.bigInt())
/** JSON-ish values with NaN, infinities, BigInts, undefined, and objects of odd keys. */
const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(text, tie('json'), { maxKeys: 4 }),
  ),
}))
/** Anything at all: functions, symbols, Maps, Dates, typed arrays, boxed values, null prototypes. */
const weird = fc.oneof(
  fc.anything({
    withBigInt: true, withBoxedValues: true, withDate: true, withMap: true, withSet: true,
    withNullPrototype: true, withObjectString: true, withSparseArray: true, withTypedArray: true,
    maxDepth: 3,
  }),
  fc.constantFrom(() => 1, Symbol('s'), new Uint8Array([1, 2]), Object.create(null)),
)
const any = fc.oneof(json, weird)

/** Every node of a JSON document, as the keys and indices leading to it. */
function paths(doc, prefix = []) {
  const out = [prefix]
  if (Array.isArray(doc) || (typeof doc === 'object' && doc !== null && Object.getPrototypeOf(doc) === Object.prototype)) {
    for (const k of Object.keys(doc)) out.push(...paths(doc[k], [...prefix, Array.isArray(doc) ? Number(k) : k]))
  }
  return out
}

/** One of `valid`, changed at 1 to 3 nodes: replaced by any value, removed, a key added. */
function mutated(valid) {
  return fc.tuple(
    fc.constantFrom(...valid),
    fc.array(fc.tuple(fc.nat(), fc.constantFrom('replace', 'remove', 'add'), any, text), { minLength: 1, maxLength: 3 }),
  ).map(([base, edits]) => {
    let doc = structuredClone(base)
    for (const [pick, action, value, key] of edits) {
      const all = paths(doc)
      const path = all[pick % all.length]
      if (path.length === 0) {
        if (action === 'replace') doc = value
        continue
      }
      let parent = doc
      for (const step of path.slice(0, -1)) parent = parent?.[step]
      if (parent === null || typeof parent !== 'object') continue
      const last = path[path.length - 1]
      try {
        if (action === 'replace') parent[last] = value
        else if (action === 'remove') Array.isArray(parent) ? parent.splice(last, 1) : delete parent[last]
        else if (!Array.isArray(parent)) parent[key] = value
      } catch {
        // a frozen or exotic container: left as it is
      }
    }
    return doc
  })
}

// ------------------------------------------------------------------------------- valid inputs

const EVENTS = [
  {
    deployment_request: 'Deploy v2',
    repository_full_name: 'acme/shop',
    status: 'success',
    external_url: 'https://ci.example.com/run/1',
    commit_sha: '0123456789abcdef0123456789abcdef01234567',
    commit_message: 'Fix checkout',
    ref: 'refs/heads/main',
    event_metadata: { environment: 'prod', correlation_id: 'c-1', n: [1, 2.5, null, true] },
  },
  { deployment_request: 'x' },
]
const CHECKS = [
  {
    name: 'web', type: 'http', url: 'http://127.0.0.1:9/health', timeout: '200ms', method: 'GET',
    headers: { 'x-a': 'b' }, category: 'endpoint', max_redirects: 2, max_body_bytes: 1024,
    expect: { status: ['2xx', 301], max_latency: '1s', body_contains: 'ok', json: [{ pointer: '/a', equals: 1 }] },
  },
  { name: 'tcp', type: 'tcp', host: '127.0.0.1', port: 9, send: 'PING', expect: 'PONG', timeout: '200ms' },
  { name: 'dns', type: 'dns', host: 'localhost', addresses: ['127.0.0.1'], timeout: '200ms' },
  { name: 'pg', type: 'postgres', url: 'postgres://u@127.0.0.1:9/db', tls: 'disable', timeout: '200ms' },
  { name: 'redis', type: 'redis', url: 'redis://127.0.0.1:9', timeout: '200ms' },
  { name: 'cmd', type: 'command', program: 'true', args: ['a'], timeout: '1s', expect: { exit_code: 0 } },
]
const DETECTORS = [
  { type: 'threshold', metric: 'web.latency_ms', upper: 100, trigger: 2, name: 'slow' },
  { type: 'baseline', metric: 'web.latency_ms', allowed_change: 0.1, direction: 'increase' },
  { type: 'spike', metric: 'web.latency_ms', window: 10, threshold: 4 },
  { type: 'cusum', metric: 'web.latency_ms' },
  { type: 'ewma', metric: 'web.latency_ms' },
  { type: 'trend', metric: 'web.latency_ms' },
  { type: 'changepoint', metric: 'web.latency_ms' },
  { type: 'likelihood', metric: 'web.latency_ms', tail: 1e-6 },
  { type: 'shift', metric: 'web.latency_ms', trend: false },
]
const CONFIGS = [
  {
    schedule: { intervals: ['1s', '2s'], cooldown: '5s', max_duration: '1m', jitter: '0s' },
    checks: CHECKS,
    verdict: { failure_limit: 0, consecutive_error_limit: 4, min_samples: 5, no_data: 'inconclusive' },
    detectors: [...DETECTORS, { type: 'error_rate', metric: 'prom.http' }],
    alerts: { channels: [{ name: 'app', type: 'inapp' }, { name: 'hook', type: 'webhook', url: 'http://127.0.0.1:9/h', secret: 's' }] },
    baseline: { pre_deploy: '1h', previous: 5 },
    sources: [
      { name: 'prom', type: 'prometheus', url: 'http://127.0.0.1:9', queries: { latency: 'up' }, counts: { http: { errors: 'e', requests: 'r' } } },
      { type: 'host' },
    ],
  },
  { checks: [CHECKS[0]] },
  {},
]

// ------------------------------------------------------------------------------- the property

/** napi's codes for an argument of the wrong type (CasedErrorInfo). */
const NAPI = new Set(['InvalidArg', 'ObjectExpected', 'StringExpected', 'NameExpected', 'FunctionExpected',
  'NumberExpected', 'BooleanExpected', 'ArrayExpected', 'BigintExpected'])

/** NAPI, and the bare TypeError napi's own message builder can throw (see judge). */
const NAPI_OR_TYPE = new Set(NAPI)

function named(e) {
  assert.ok(Array.isArray(e.fields) && e.fields.length > 0, `${e.message}`)
  for (const f of e.fields) {
    assert.equal(typeof f.field, 'string')
    assert.ok(f.field.trim().length > 0, `an unnamed field: ${JSON.stringify(e.fields)}`)
    assert.ok(typeof f.message === 'string' && f.message.length > 0, JSON.stringify(e.fields))
  }
}

/**
 * The property: `call()` returns, or throws a 'validation' error naming its fields, or an
 * error whose code is in `allowed` (plain arguments of a wrong type: napi's codes).
 */
function judge(e, allowed) {
  assert.ok(e instanceof Error, `not an Error: ${String(e)}`)
  if (e.code === 'validation') return named(e)
  // napi's message for a wrongly typed plain argument JSON.stringify's the value; one holding a
  // BigInt or a cycle makes that throw a bare TypeError instead (napi-rs, RELIABILITY.md).
  if ((allowed === NAPI_OR_TYPE || allowed.typeErrors) && e instanceof TypeError && e.code === undefined) return
  assert.ok(allowed.has(e.code), `unexpected error ${e.code}: ${e.message}`)
}

function holds(target, call, allowed = new Set()) {
  EXECUTIONS[target] = (EXECUTIONS[target] ?? 0) + 1
  try {
    call()
  } catch (e) {
    judge(e, allowed)
  }
}

async function holdsAsync(target, call, allowed = new Set()) {
  EXECUTIONS[target] = (EXECUTIONS[target] ?? 0) + 1
  try {
    await call()
  } catch (e) {
    judge(e, allowed)
  }
}

// ------------------------------------------------------------------------------- targets

describe('binding fuzz', () => {
  after(() => console.log(`binding fuzz (Node) executions: ${JSON.stringify(EXECUTIONS)}`))

  test('new DeploymentEvent(init)', () => {
    fc.assert(fc.property(fc.oneof(any, mutated(EVENTS)), (init) => {
      holds('new DeploymentEvent', () => {
        const event = new DeploymentEvent(init)
        // What is accepted reads back as itself.
        assert.deepEqual(DeploymentEvent.fromJson(event.toJson()).toJSON(), event.toJSON())
      })
    }), OPTIONS)
  })

  test('DeploymentEvent.fromJson and fromEnv', () => {
    const json = fc.oneof(text, fc.uint8Array({ maxLength: 40 }), mutated(EVENTS).map((d) => JSON.stringify(d, (_, v) => (typeof v === 'bigint' ? String(v) : v)) ?? 'null'))
    fc.assert(fc.property(json, any, (t, env) => {
      // A text that is not a string or bytes is napi's argument error.
      holds('DeploymentEvent.fromJson', () => DeploymentEvent.fromJson(t), NAPI_OR_TYPE)
      holds('DeploymentEvent.fromEnv', () => DeploymentEvent.fromEnv(env), NAPI_OR_TYPE)
    }), OPTIONS)
  })

  test('new Monitor(config, options)', () => {
    const options = fc.oneof(fc.constant(undefined), any, fc.record({
      checks: fc.oneof(any, fc.dictionary(text, fc.oneof(any, fc.constant(async () => ({ status: 'pass', message: '' }))), { maxKeys: 2 })),
      baselines: fc.oneof(any, fc.dictionary(text, fc.oneof(any, fc.array(number, { maxLength: 5 })), { maxKeys: 2 })),
      onRollback: fc.oneof(any, fc.constant(() => {})),
    }, { requiredKeys: [] }))
    fc.assert(fc.property(fc.oneof(any, mutated(CONFIGS)), options, (config, opts) => {
      holds('new Monitor', () => new Monitor(config, opts))
    }), OPTIONS)
  })

  test('new Detector(config), update and detect', () => {
    fc.assert(fc.property(fc.oneof(any, mutated(DETECTORS)), fc.array(number, { maxLength: 8 }), (config, xs) => {
      holds('new Detector', () => {
        const d = new Detector(config)
        for (const x of xs) {
          try { d.update(x) } catch (e) { judge(e, new Set()) }
        }
        try { d.detect(xs) } catch (e) { judge(e, new Set()) }
      })
    }), OPTIONS)
  })

  test('compare, compareErrorRates and segment', () => {
    const values = fc.oneof(any, fc.array(number, { maxLength: 30 }), fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 5, maxLength: 30 }))
    const counts = fc.oneof(any, fc.tuple(number, number), fc.tuple(fc.nat(), fc.nat()), fc.tuple(fc.constant(2 ** 53), fc.constant(2 ** 53)))
    fc.assert(fc.property(values, values, fc.oneof(fc.constant(undefined), any), fc.oneof(fc.constant(undefined), any), counts, counts, (b, c, config, opts, eb, ec) => {
      holds('compare', () => compare(b, c, config, opts), NAPI_OR_TYPE)
      holds('compareErrorRates', () => compareErrorRates(eb, ec, config, opts), NAPI_OR_TYPE)
      holds('segment', () => segment(b, config), NAPI_OR_TYPE)
    }), OPTIONS)
  })

  test('signWebhook and verifyWebhookSignature', () => {
    const SIGNATURE = new Set([...NAPI, 'malformed_timestamp', 'outside_tolerance', 'malformed_signature', 'mismatch'])
    SIGNATURE.typeErrors = true
    fc.assert(fc.property(any, any, any, any, any, any, (secret, ts, body, signature, tolerance, now) => {
      holds('signWebhook', () => signWebhook(secret, ts, body), NAPI_OR_TYPE)
      holds('verifyWebhookSignature', () => verifyWebhookSignature(secret, ts, body, signature, tolerance, now), SIGNATURE)
    }), OPTIONS)
  })

  test('a signed body verifies and a changed one does not', () => {
    fc.assert(fc.property(text, fc.nat(2 ** 40), fc.uint8Array({ maxLength: 64 }), fc.nat(), (secret, ts, body, flip) => {
      EXECUTIONS['verifyWebhookSignature (signed)'] = (EXECUTIONS['verifyWebhookSignature (signed)'] ?? 0) + 1
      const signature = signWebhook(secret, ts, body)
      verifyWebhookSignature(secret, ts, body, signature, 300, ts)
      if (body.length > 0) {
        const changed = Uint8Array.from(body)
        changed[flip % body.length] ^= 1 << (flip % 8)
        assert.throws(() => verifyWebhookSignature(secret, ts, changed, signature, 300, ts), (e) => e.code === 'mismatch')
      }
    }), OPTIONS)
  })

  test('new Client(options) and new PrometheusSource(url, options)', () => {
    const clientOptions = fc.oneof(any, fc.record({
      apiKey: fc.oneof(any, text), baseUrl: fc.oneof(any, fc.constantFrom('http://127.0.0.1:9', 'https://x', 'ftp://x', 'http://')),
      timeoutMs: any, maxRetries: any,
    }, { requiredKeys: [] }))
    const sourceOptions = fc.oneof(any, fc.record({ bearerToken: any, timeoutMs: any }, { requiredKeys: [] }))
    fc.assert(fc.property(clientOptions, fc.oneof(any, text), sourceOptions, (options, url, sopts) => {
      holds('new Client', () => new Client(options), NAPI_OR_TYPE)
      holds('new PrometheusSource', () => new PrometheusSource(url, sopts), NAPI_OR_TYPE)
    }), OPTIONS)
  })

  test('renderReport(report, format)', async () => {
    const samples = Array.from({ length: 120 }, (_, i) => ({ metric: 'api.latency_ms', timestamp: 1_764_763_200 + 10 * i - 600, value: 100 + (i % 7) + (i >= 60 ? 100 : 0) }))
    const monitor = new Monitor({ detectors: [{ type: 'baseline', metric: 'api.latency_ms' }] })
    const report = await monitor.replay(new DeploymentEvent({ deployment_request: 'Deploy v2' }), { started_at: 1_764_763_200, samples })
    assert.equal(report.verdict, 'unhealthy')
    const format = fc.oneof(fc.constantFrom('md', 'markdown', 'html', 'json'), any)
    fc.assert(fc.property(fc.oneof(any, mutated([report])), format, (r, f) => {
      holds('renderReport', () => renderReport(r, f), NAPI_OR_TYPE)
    }), OPTIONS)
  })

  test('runCheck(config)', async () => {
    // Only the loopback http and tcp checks are mutated: a command or DNS check is never run
    // from a random configuration. A check whose target fails is an outcome, not an error.
    await fc.assert(fc.asyncProperty(fc.oneof(any, mutated(CHECKS.slice(0, 2))), async (config) => {
      await holdsAsync('runCheck', async () => {
        const outcome = await runCheck(config)
        assert.ok(['pass', 'warn', 'fail', 'error'].includes(outcome.status), JSON.stringify(outcome))
      })
    }), { numRuns: Math.max(1, Math.floor(RUNS / 2)) })
  })
})
