import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'

import { DeploymentEvent, History, Monitor, renderReport } from '../index.js'
import { catchCased, fieldNames, rejectsCased } from './support.mjs'

const event = (status = 'running') =>
  new DeploymentEvent({
    deployment_request: 'Deploy v1.4.2',
    repository_full_name: 'acme/shop',
    status,
    commit_sha: 'abcdef1',
    event_metadata: { environment: 'production' },
  })

/** A monitor recording into `history` whose only check passes or fails. */
const monitor = (history, status) =>
  new Monitor(
    { schedule: { intervals: ['50ms'], cooldown: '150ms', max_duration: '20s' }, verdict: { min_samples: 1 } },
    { checks: { web: () => ({ status, message: status === 'pass' ? 'HTTP 200' : 'HTTP 503' }) }, history },
  )

describe('History', () => {
  test('sessions recorded by a monitor are queried back', async () => {
    const history = History.inMemory()
    assert.equal(history.path, null)
    const healthy = await monitor(history, 'pass').run(event('success'))
    const unhealthy = await monitor(history, 'fail').run(event())
    assert.equal(healthy.verdict, 'healthy')
    assert.equal(unhealthy.verdict, 'unhealthy')

    const all = await history.deployments()
    assert.deepEqual(all.map((d) => d.session_id).sort(), [healthy.session_id, unhealthy.session_id].sort())
    const mine = await history.deployments({ repository: 'acme/shop', environment: 'production', verdict: 'unhealthy', since_unix_ms: Date.now() - 3_600_000 })
    assert.deepEqual(mine.map((d) => d.session_id), [unhealthy.session_id])
    assert.equal(mine[0].commit_sha, 'abcdef1')
    assert.ok(mine[0].ticks >= 1)
    assert.deepEqual(await history.deployments({ repository: 'acme/other' }), [])

    const back = await history.report(unhealthy.session_id)
    assert.equal(back.session_id, unhealthy.session_id)
    assert.equal(back.started_at_unix_ms, unhealthy.started_at_unix_ms, 'ms timestamps stay integers')
    assert.equal(back.verdict, 'unhealthy')
    assert.equal(await history.report('no-such-session'), null)

    const [day] = await history.verdictCounts('day')
    assert.equal(day.total, 2)
    assert.equal(day.healthy, 1)
    assert.equal(day.unhealthy, 1)
    assert.equal(day.success_rate, 0.5)
    assert.equal((await history.verdictCounts('week', { verdict: 'healthy' }))[0].total, 1)

    const detected = await history.timeToDetect()
    assert.deepEqual(detected.map((d) => d.session_id), [unhealthy.session_id])
    assert.equal(detected[0].detected_by, 'failed_tick')
    assert.ok(detected[0].time_to_detect_ms >= 0)

    const last = await history.lastHealthy(5, { repository: 'acme/shop' })
    assert.deepEqual(last.map((d) => d.session_id), [healthy.session_id])
    assert.deepEqual(await history.findings(healthy.session_id), [])
    assert.equal(await history.deploymentOfFinding('no-such-finding'), null)
  })

  test('a file history survives reopening', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cased-node-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'nested', 'history.db')
    const report = await monitor(new History(path), 'pass').run(event('success'))
    const reopened = new History(path)
    assert.equal(reopened.path, path)
    assert.equal((await reopened.report(report.session_id)).verdict, 'healthy')
  })

  test('checkpoint() leaves every session in the .db file alone', async (t) => {
    const { copyFileSync, existsSync, statSync } = await import('node:fs')
    const dir = mkdtempSync(join(tmpdir(), 'cased-node-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'history.db')
    const history = new History(path)
    const report = await monitor(history, 'pass').run(event('success'))
    assert.ok(statSync(`${path}-wal`).size > 0, 'the session is in the write-ahead log first')
    await history.checkpoint()
    assert.ok(!existsSync(`${path}-wal`) || statSync(`${path}-wal`).size === 0)
    const copy = join(dir, 'upload.db')
    copyFileSync(path, copy)
    assert.equal((await new History(copy).report(report.session_id)).verdict, 'healthy')
    await History.inMemory().checkpoint()
  })

  test('bad arguments have stable codes', async () => {
    const history = History.inMemory()
    let e = await rejectsCased(history.deployments({ repo: 'acme/shop' }), 'validation')
    assert.deepEqual(fieldNames(e), ['filter'])
    e = await rejectsCased(history.verdictCounts('month'), 'validation')
    assert.deepEqual(fieldNames(e), ['bucket'])
    catchCased(() => new History('/proc/cased-cannot-write-here/history.db'), 'storage')
    e = catchCased(() => new Monitor({}, { history: {} }), 'validation')
    assert.deepEqual(fieldNames(e), ['history'])
  })
})

describe('renderReport', () => {
  test('Markdown, HTML and JSON of a recorded report', async () => {
    const history = History.inMemory()
    const report = await monitor(history, 'fail').run(event())
    const stored = await history.report(report.session_id)
    for (const r of [report, stored]) {
      const md = renderReport(r, 'md')
      assert.match(md, /unhealthy/i)
      assert.ok(md.includes(report.session_id) || md.includes('Deploy v1.4.2'), md.slice(0, 300))
      const html = renderReport(r, 'html')
      assert.match(html, /^<!DOCTYPE html>/i)
      assert.ok(html.includes('<svg'), 'inline SVG charts')
      assert.ok(!html.includes('https://'), 'no external resources')
      assert.deepEqual(JSON.parse(renderReport(r, 'json')).session_id, report.session_id)
    }
    let e = catchCased(() => renderReport(report, 'pdf'), 'validation')
    assert.deepEqual(fieldNames(e), ['format'])
    e = catchCased(() => renderReport({ verdict: 'healthy' }, 'md'), 'validation')
    assert.deepEqual(fieldNames(e), ['report'])
  })
})
