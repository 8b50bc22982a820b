import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { Detector } from '../index.js'
import { catchCased, fieldNames } from './support.mjs'

/** A deterministic noisy series: `n` values around `level` (a small LCG, no Math.random). */
function series(n, level, seed = 7) {
  let s = seed
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31
    return level + (s / 2 ** 31 - 0.5) * 4
  })
}

const STEP = [...series(60, 100), ...series(60, 130, 11)]

describe('Detector', () => {
  for (const config of [
    { type: 'cusum', metric: 'latency' },
    { type: 'ewma', metric: 'latency' },
    { type: 'spike', metric: 'latency' },
  ]) {
    test(`${config.type}: a step change is detected, batch and streaming agree`, () => {
      const batch = new Detector(config).detect(STEP)
      assert.ok(batch.length > 0, 'the step is found')
      const streaming = new Detector(config)
      const updates = STEP.map((x) => streaming.update(x)).filter((f) => f !== null)
      assert.deepEqual(updates, batch)
      const typed = new Detector(config).detect(Float64Array.from(STEP))
      assert.deepEqual(typed, batch)
      const first = batch[0]
      assert.equal(first.metric, 'latency')
      assert.equal(first.detector, config.type)
      assert.equal(first.kind, 'alarm')
      assert.ok(['info', 'warning', 'critical', 'emergency'].includes(first.severity))
      assert.ok(first.current > 102, `fired above the old level (98–102): ${first.current}`)
      assert.match(first.message, /^latency /)
    })

    test(`${config.type}: nothing on a constant series`, () => {
      const d = new Detector(config)
      assert.deepEqual(d.detect(new Array(200).fill(42)), [])
      assert.equal(d.update(42), null)
    })
  }

  test('threshold: k-of-n trigger, then resolution', () => {
    const d = new Detector({ type: 'threshold', metric: 'cpu', upper: 90, trigger: 2, name: 'cpu_hot' })
    assert.equal(d.name, 'cpu_hot')
    assert.equal(d.metric, 'cpu')
    assert.equal(d.update(95), null)
    const alarm = d.update(96)
    assert.equal(alarm.kind, 'alarm')
    assert.equal(alarm.detector, 'cpu_hot')
    assert.ok(d.score >= 1)
    const resolved = d.update(50)
    assert.equal(resolved.kind, 'resolved')
    assert.equal(resolved.severity, 'info')
    d.reset()
    assert.equal(d.score, 0)
  })

  test('bad input is a validation error with the core code', () => {
    let e = catchCased(() => new Detector({ type: 'spike', metric: 'm', treshold: 3 }), 'validation')
    assert.match(e.message, /unknown field `treshold`/)
    e = catchCased(() => new Detector({ type: 'spikey', metric: 'm' }), 'validation')
    assert.match(e.message, /spikey/)
    e = catchCased(() => new Detector({ type: 'baseline', metric: 'm' }), 'validation')
    assert.deepEqual(fieldNames(e), ['type'])
    const d = new Detector({ type: 'spike', metric: 'm' })
    e = catchCased(() => d.update(Number.NaN), 'validation')
    e = catchCased(() => d.detect([1, 2, Number.POSITIVE_INFINITY]), 'validation')
    assert.deepEqual(fieldNames(e), ['values[2]'])
  })
})
