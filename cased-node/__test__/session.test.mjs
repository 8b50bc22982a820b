import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { DeploymentEvent, Monitor } from '../index.js'
import { INDEX, catchCased, child, fieldMessage, fieldNames } from './support.mjs'

/** A deployment event with `status`. */
const event = (status = 'running') =>
  new DeploymentEvent({
    deployment_request: 'Deploy v2',
    repository_full_name: 'acme/shop',
    status,
    event_metadata: { environment: 'prod', correlation_id: 'c-42' },
  })

/** A schedule of millisecond ticks; `max_duration` keeps a broken test from running for hours. */
const FAST = { intervals: ['25ms'], cooldown: '150ms', max_duration: '20s' }

/** A custom check that passes and counts its calls. */
function passing() {
  const check = () => {
    check.calls += 1
    return { status: 'pass', message: 'HTTP 200' }
  }
  check.calls = 0
  return check
}

/** The first update of `session`, leaving the loop early (which must stop following cleanly). */
async function firstUpdate(session) {
  for await (const update of session.updates()) return update
  assert.fail('the session ended without an update')
}

describe('a session with millisecond intervals, end to end', () => {
  test('a deployment already successful is monitored through its cool-down and found healthy', async () => {
    const web = passing()
    const monitor = new Monitor({ schedule: FAST, verdict: { min_samples: 3 } }, { checks: { web } })
    assert.deepEqual(monitor.checkNames, ['web'])
    const report = await monitor.run(event('success'))
    assert.equal(report.verdict, 'healthy', report.reason)
    assert.equal(report.ended_by, 'cooldown_elapsed')
    assert.ok(report.cooldown_started_ms >= 0 && report.cooldown_started_ms < 25, `${report.cooldown_started_ms}`)
    // Ticks at 0, 25, ..., 150 ms when on time; a loaded machine starts them late, never early.
    assert.ok(report.ticks.length >= 3 && report.ticks.length <= 7, `${report.ticks.length} ticks`)
    assert.deepEqual(
      report.ticks.map((t) => t.tick),
      report.ticks.map((_, i) => i + 1),
    )
    assert.ok(report.ticks.every((t) => t.phase === 'cooldown'))
    assert.ok(report.ticks.every((t) => t.checks.length === 1 && t.checks[0].name === 'web'))
    assert.ok(report.counters.measured_ticks >= 3)
    assert.equal(report.counters.failed_ticks, 0)
    // One call per tick (a call a tick gave up on may run after the report, on a loaded machine).
    assert.ok(web.calls >= report.counters.measured_ticks && web.calls <= report.ticks.length, `${web.calls} calls`)
    assert.ok(report.duration_ms >= 150, `${report.duration_ms} ms`)
    assert.equal(typeof report.started_at_unix_ms, 'number')
    assert.ok(Math.abs(report.started_at_unix_ms - Date.now()) < 60_000)
    assert.deepEqual(report.event, event('success').toJSON())
    assert.equal(report.rollback, null)
  })

  test('updates arrive in order, end with the finished one and agree with the report', async () => {
    const monitor = new Monitor({ schedule: FAST, verdict: { min_samples: 3 } }, { checks: { web: passing() } })
    const session = await monitor.start(event('running'))
    assert.match(session.id, /^c-42-[0-9a-f]{8}$/)
    const updates = []
    for await (const update of session.updates()) {
      updates.push(update)
      if (updates.length === 1) session.complete()
    }
    const report = await session.wait()
    assert.ok(updates.length >= 2, `${updates.length} updates`)
    assert.ok(!updates.some((u) => 'skipped' in u), 'a prompt listener skips nothing')
    const ticks = updates.map((u) => u.tick)
    assert.deepEqual(ticks, [...ticks].sort((a, b) => a - b), 'tick numbers never go back')
    const last = updates.at(-1)
    assert.equal(last.phase, 'finished')
    assert.ok(updates.slice(0, -1).every((u) => u.phase !== 'finished'))
    assert.equal(last.verdict, report.verdict)
    assert.equal(last.reason, report.reason)
    assert.equal(last.tick, report.ticks.length)
    assert.equal(last.next_tick_in_ms, null)
    assert.deepEqual(last.checks, [])
    for (const u of updates.slice(0, -1)) {
      assert.equal(u.session_id, session.id)
      assert.deepEqual(u.deployment, {
        deployment_request: 'Deploy v2',
        repository: 'acme/shop',
        commit_sha: null,
        environment: 'prod',
        correlation_id: 'c-42',
      })
      assert.equal(typeof u.next_tick_in_ms, 'number')
      assert.deepEqual(u.checks.map((c) => [c.name, c.category]), [['web', 'availability']])
    }
    assert.equal(report.verdict, 'healthy', report.reason)
  })

  test('any number of listeners follow the same session', async () => {
    const monitor = new Monitor({ schedule: FAST, verdict: { min_samples: 1 } }, { checks: { web: passing() } })
    const session = await monitor.start(event('success'))
    const follow = async () => {
      const seen = []
      for await (const u of session.updates()) seen.push(`${u.tick}:${u.phase}`)
      return seen
    }
    const [a, b] = await Promise.all([follow(), follow()])
    const report = await session.wait()
    const finished = `${report.ticks.length}:finished`
    assert.equal(a.at(-1), finished)
    assert.equal(b.at(-1), finished)
    // Each listener starts from the latest update, so one may have joined a tick later.
    assert.deepEqual(a.slice(-3), b.slice(-3))
    // A listener that arrives after the end gets the finishing update alone.
    assert.deepEqual(await follow(), [finished])
  })
})

describe('the deployment drives the phases', () => {
  test('complete() moves a running deployment into its cool-down', async () => {
    const monitor = new Monitor({ schedule: { ...FAST, cooldown: '100ms' }, verdict: { min_samples: 1 } }, { checks: { web: passing() } })
    const session = await monitor.start(event('running'))
    const first = await firstUpdate(session)
    assert.equal(first.phase, 'active')
    assert.equal(session.report(), null)
    assert.equal(session.isFinished, false)
    session.complete()
    const report = await session.wait()
    assert.equal(report.ended_by, 'cooldown_elapsed')
    assert.equal(typeof report.cooldown_started_ms, 'number')
    assert.ok(report.cooldown_started_ms > 0)
    assert.ok(report.duration_ms >= report.cooldown_started_ms + 100)
    assert.equal(report.ticks[0].phase, 'active')
    assert.equal(report.ticks.at(-1).phase, 'cooldown')
    const phases = report.ticks.map((t) => t.phase)
    assert.deepEqual(phases, [...phases].sort(), 'active ticks, then cool-down ticks')
    assert.equal(session.isFinished, true)
    assert.deepEqual(session.report(), report)
  })

  for (const [method, endedBy] of [
    ['fail', 'deployment_failed'],
    ['cancel', 'cancelled'],
  ]) {
    test(`${method}() ends the session as ${endedBy}`, async () => {
      const monitor = new Monitor({ schedule: FAST }, { checks: { web: passing() } })
      const session = await monitor.start(event('running'))
      await firstUpdate(session)
      session[method]()
      const report = await session.wait()
      assert.equal(report.ended_by, endedBy)
      assert.equal(report.verdict, 'inconclusive')
      assert.equal(report.cooldown_started_ms, null)
      assert.ok(report.ticks.length >= 1)
      session.complete() // too late: no effect
      assert.equal((await session.wait()).ended_by, endedBy)
    })
  }

  for (const [status, endedBy] of [
    ['failure', 'deployment_failed'],
    ['cancelled', 'cancelled'],
  ]) {
    test(`an event whose status is ${status} ends the session at once`, async () => {
      const web = passing()
      const report = await new Monitor({ schedule: FAST }, { checks: { web } }).run(event(status))
      assert.equal(report.ended_by, endedBy)
      assert.deepEqual(report.ticks, [])
      assert.equal(web.calls, 0)
    })
  }

  test('pushed samples are summarised in the report, and bad ones are refused', async () => {
    const monitor = new Monitor({ schedule: FAST }, { checks: { web: passing() } })
    const session = await monitor.start(event('running'))
    session.push('p99_ms', 120)
    session.push('p99_ms', 180)
    let e = catchCased(() => session.push('p99_ms', NaN), 'validation')
    assert.deepEqual(fieldNames(e), ['value'])
    assert.match(fieldMessage(e, 'value'), /NaN is not a finite number/)
    e = catchCased(() => session.push('errors', Infinity), 'validation')
    assert.deepEqual(fieldNames(e), ['value'])
    e = catchCased(() => session.push('  ', 1), 'validation')
    assert.deepEqual(fieldNames(e), ['metric'])
    session.cancel()
    const report = await session.wait()
    assert.deepEqual(report.metrics, { p99_ms: { count: 2, window: 2, last: 180, mean: 150, median: 150 } })
  })
})

describe('custom checks and the rollback hook', () => {
  test('a failing check with failure_limit 0 is unhealthy and fires the hook exactly once', async () => {
    const calls = []
    const monitor = new Monitor(
      { schedule: FAST, verdict: { failure_limit: 0 } },
      {
        checks: { web: async () => ({ status: 'fail', message: 'HTTP 503', latencyMs: 12.5 }) },
        onRollback: async (context) => {
          calls.push(context)
        },
      },
    )
    const deployment = event('running')
    const report = await monitor.run(deployment)
    assert.equal(report.verdict, 'unhealthy')
    assert.equal(report.ended_by, 'unhealthy')
    assert.equal(report.ticks.length, 1)
    assert.deepEqual(report.ticks[0].checks[0], {
      name: 'web',
      category: 'availability',
      status: 'fail',
      latency_ms: 12.5,
      message: 'HTTP 503',
      evidence: null,
    })
    assert.equal(calls.length, 1)
    assert.deepEqual(calls[0], { sessionId: report.session_id, event: deployment.toJSON(), reason: report.reason })
    assert.deepEqual(Object.keys(calls[0].event), Object.keys(deployment.toJSON()), 'wire order')
    assert.match(report.reason, /check "web" failed: HTTP 503/)
    assert.equal(report.rollback.error, null)
    assert.equal(typeof report.rollback.elapsed_ms, 'number')
  })

  test('a hook that throws or rejects is recorded in report.rollback.error', async () => {
    for (const onRollback of [
      () => {
        throw new Error('rollback API said no')
      },
      () => Promise.reject(new Error('rollback API said no')),
    ]) {
      const monitor = new Monitor({ schedule: FAST }, { checks: { web: () => ({ status: 'fail' }) }, onRollback })
      const report = await monitor.run(event())
      assert.equal(report.verdict, 'unhealthy')
      assert.equal(report.rollback.error, 'rollback API said no')
    }
  })

  test('a check that throws or rejects is an error outcome carrying its message', async () => {
    const monitor = new Monitor(
      { schedule: FAST, verdict: { consecutive_error_limit: 1 } },
      {
        checks: {
          throws: () => {
            throw new Error('database is down')
          },
          rejects: async () => {
            throw new TypeError('queue unreachable')
          },
          web: passing(),
        },
      },
    )
    const report = await monitor.run(event())
    assert.equal(report.ended_by, 'error_limit')
    assert.equal(report.verdict, 'inconclusive')
    assert.equal(report.ticks.length, 2, 'a limit of 1 tolerates one error in a row')
    for (const tick of report.ticks) {
      assert.deepEqual(
        tick.checks.map((c) => [c.name, c.status, c.message]),
        [
          ['throws', 'error', 'database is down'],
          ['rejects', 'error', 'queue unreachable'],
          ['web', 'pass', 'HTTP 200'],
        ],
      )
    }
    assert.match(report.reason, /could not run 2 times in a row \(limit 1\): (database is down|queue unreachable)/)
    assert.equal(report.counters.failed_ticks, 0, 'errors are not failures')
  })

  test('a check whose promise never settles becomes an error and delays nothing', async () => {
    const web = passing()
    const monitor = new Monitor(
      { schedule: FAST, verdict: { consecutive_error_limit: 2 } },
      { checks: { hangs: () => new Promise(() => {}), web } },
    )
    const report = await monitor.run(event())
    assert.equal(report.ended_by, 'error_limit')
    assert.equal(report.ticks.length, 3)
    for (const tick of report.ticks) {
      assert.deepEqual(tick.checks[0].status, 'error')
      assert.equal(tick.checks[0].message, 'the check did not finish within 25 ms')
      assert.equal(tick.checks[1].name, 'web')
    }
  })

  test('a malformed result is an error outcome saying what is wrong', async () => {
    const checks = {
      nothing: () => {},
      string: () => 'pass',
      no_status: () => ({ message: 'fine' }),
      bad_status: () => ({ status: 'ok' }),
      unknown_key: async () => ({ status: 'pass', latency: 3 }),
      bad_latency: () => ({ status: 'pass', latencyMs: -1 }),
      bad_message: () => ({ status: 'pass', message: 42 }),
      not_json: () => ({ status: 'pass', evidence: { f: () => 1 } }),
      throws_string: () => Promise.reject('plain text'),
      throws_object: () => Promise.reject({ code: 7 }),
    }
    const monitor = new Monitor({ schedule: FAST, verdict: { consecutive_error_limit: 0 } }, { checks })
    const report = await monitor.run(event())
    assert.equal(report.ticks.length, 1)
    const messages = Object.fromEntries(report.ticks[0].checks.map((c) => [c.name, [c.status, c.message]]))
    const malformed = (why) => ['error', `malformed check result: ${why}`]
    assert.equal(messages.not_json[0], 'error')
    assert.match(messages.not_json[1], /^malformed check result: its result is not JSON: .*function/i)
    delete messages.not_json
    assert.deepEqual(messages, {
      nothing: malformed("it returned undefined, not an object like { status: 'pass' }"),
      string: malformed("it returned a string, not an object like { status: 'pass' }"),
      no_status: malformed("it has no status ('pass', 'warn', 'fail' or 'error')"),
      bad_status: malformed('status: unknown variant `ok`, expected one of `pass`, `warn`, `fail`, `error`'),
      unknown_key: malformed('unknown key "latency" (known keys: status, message, evidence, latencyMs)'),
      bad_latency: malformed('latencyMs must be a non-negative number of milliseconds'),
      bad_message: malformed('message must be a string'),
      throws_string: ['error', 'plain text'],
      throws_object: ['error', 'threw a value without a message'],
    })
  })
})

describe('configuration errors', () => {
  test('bad settings are validation errors naming the key path', () => {
    let e = catchCased(() => new Monitor({ schedule: { intervals: [] } }), 'validation')
    assert.deepEqual(fieldNames(e), ['schedule.intervals'])
    assert.match(fieldMessage(e, 'schedule.intervals'), /at least one interval/)
    e = catchCased(() => new Monitor({ schedule: { intervals: ['20ms', '0s'] } }), 'validation')
    assert.deepEqual(fieldNames(e), ['schedule.intervals[1]'])
    e = catchCased(() => new Monitor({ verdikt: {} }), 'validation')
    assert.deepEqual(fieldNames(e), ['verdikt'])
    assert.match(e.message, /unknown field `verdikt`/)
    e = catchCased(() => new Monitor({ schedule: { intervals: ['1s'], cooldwn: '1m' } }), 'validation')
    assert.deepEqual(fieldNames(e), ['schedule.cooldwn'])
    e = catchCased(() => new Monitor({ verdict: { no_data: 'maybe' } }), 'validation')
    assert.deepEqual(fieldNames(e), ['verdict.no_data'])
    e = catchCased(() => new Monitor({ checks: [{ name: 'web', type: 'http', url: 'not a url' }] }), 'validation')
    assert.deepEqual(fieldNames(e), ['checks[0].url'])
  })

  test('the options are checked too, every problem at once', () => {
    let e = catchCased(
      () => new Monitor({ verdikt: {} }, { chekcs: {}, checks: { web: 'http://x' }, onRollback: 1 }),
      'validation',
    )
    assert.deepEqual(fieldNames(e), ['verdikt', 'chekcs', 'checks.web', 'onRollback'])
    assert.equal(fieldMessage(e, 'checks.web'), 'must be a function, got a string')
    assert.equal(fieldMessage(e, 'onRollback'), 'must be a function, got a number')
    e = catchCased(() => new Monitor({}, { checks: [() => ({ status: 'pass' })] }), 'validation')
    assert.deepEqual(fieldNames(e), ['checks'])
    e = catchCased(() => new Monitor({}, 'fast'), 'validation')
    assert.deepEqual(fieldNames(e), ['options'])
    e = catchCased(
      () =>
        new Monitor(
          { checks: [{ name: 'web', type: 'http', url: 'http://127.0.0.1:1/' }] },
          { checks: { web: () => ({ status: 'pass' }) } },
        ),
      'validation',
    )
    assert.deepEqual(fieldNames(e), ['checks'])
    assert.match(fieldMessage(e, 'checks'), /two checks are named "web"/)
    assert.deepEqual(new Monitor().checkNames, [])
    assert.deepEqual(new Monitor(null, null).checkNames, [])
  })
})

describe('the Node process', () => {
  test('breaking out of `for await` early lets the process exit while the session runs on', { timeout: 30_000 }, async () => {
    const source = `
      import { DeploymentEvent, Monitor } from ${JSON.stringify(INDEX)}
      const monitor = new Monitor(
        { schedule: { intervals: ['10ms'], cooldown: '1h', max_duration: '2h' } },
        { checks: { web: async () => ({ status: 'pass' }) } },
      )
      const session = await monitor.start(new DeploymentEvent({ deployment_request: 'Deploy', status: 'success' }))
      let seen = 0
      for await (const update of session.updates()) {
        seen += 1
        if (update.tick >= 3) break
      }
      console.log(JSON.stringify({ seen, finished: session.isFinished }))
    `
    const { exited } = child(source)
    const { code, signal, stdout, stderr } = await exited
    assert.equal(signal, null, stderr)
    assert.equal(code, 0, stderr)
    const out = JSON.parse(stdout)
    assert.ok(out.seen >= 1)
    assert.equal(out.finished, false, 'the session was still running when the process left')
  })
})
