import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

import { segment } from '../index.js'
import { catchCased, fieldNames } from './support.mjs'

const FIXTURE = new URL('../../cased-core/tests/fixtures/segment_ruptures.json', import.meta.url)

/** Seeded normal values (mulberry32 and Box–Muller). */
function gauss(seed) {
  let a = seed >>> 0
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  return (mu, sigma) => mu + sigma * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform())
}

function steps(levels, sigma, seed) {
  const g = gauss(seed)
  return levels.flatMap(([level, n]) => Array.from({ length: n }, () => g(level, sigma)))
}

test('segment finds known changes with each cost', () => {
  const xs = steps([[0, 100], [4, 80], [-1, 120]], 1, 7)
  for (const cost of ['normal_mean', 'normal_meanvar']) {
    const found = segment(xs, { cost })
    assert.equal(found.changes.length, 2, JSON.stringify(found.changes))
    assert.ok(Math.abs(found.changes[0] - 100) <= 2 && Math.abs(found.changes[1] - 180) <= 2)
    assert.deepEqual(found.segments.map((s) => s.start), [0, ...found.changes])
    assert.equal(found.segments.at(-1).end, 300)
    assert.ok(Math.abs(found.segments[1].mean - 4) < 0.5)
    assert.equal(found.cost, cost)
  }
  const counts = [...Array(100).fill(20), ...Array(100).fill(40)]
  assert.deepEqual(segment(counts, { cost: 'poisson' }).changes, [100])
})

test('a stationary series has no change; typed arrays are read', () => {
  const found = segment(new Float64Array(steps([[5, 400]], 2, 11)))
  assert.deepEqual(found.changes, [])
  assert.ok(Math.abs(found.penalty - 4 * Math.log(400)) < 1e-9)
})

test('segment finds the changes ruptures finds on the pinned series', () => {
  const { cases } = JSON.parse(readFileSync(FIXTURE, 'utf8'))
  assert.equal(cases.length, 24)
  cases.forEach((c, i) => {
    const found = segment(c.values, { cost: c.cost, penalty: c.penalty, min_size: c.min_size })
    assert.deepEqual(found.changes, c.ruptures_changes, `case ${i}`)
  })
})

test('bad input names the field', () => {
  assert.deepEqual(fieldNames(catchCased(() => segment([1, NaN]), 'validation')), ['values[1]'])
  assert.deepEqual(fieldNames(catchCased(() => segment([1, 2, -3], { cost: 'poisson' }), 'validation')), ['values[2]'])
  assert.deepEqual(fieldNames(catchCased(() => segment([]), 'validation')), ['values'])
  assert.deepEqual(fieldNames(catchCased(() => segment([1, 2], { cost: 'median' }), 'validation')), ['cost'])
  assert.deepEqual(fieldNames(catchCased(() => segment([1, 2], { penalty: 'aic' }), 'validation')), ['penalty'])
  assert.deepEqual(fieldNames(catchCased(() => segment([1, 2], { min_size: 0 }), 'validation')), ['min_size'])
  assert.throws(() => segment('1,2,3'))
})

test('the autocorrelation correction keeps the real change only', () => {
  let plain = 0
  let corrected = 0
  let found = 0
  for (let seed = 0; seed < 10; seed++) {
    const g = gauss(seed + 100)
    let x = 0
    const xs = Array.from({ length: 600 }, (_, i) => {
      x = 0.8 * x + 0.6 * g(0, 1)
      return (i < 300 ? 0 : 4) + x
    })
    plain += segment(xs).changes.length
    const s = segment(xs, { autocorrelation: true, penalty_scale: 1 })
    assert.ok(s.autocorrelation > 0.5 && s.autocorrelation <= 0.9, JSON.stringify(s.autocorrelation))
    corrected += s.changes.length
    if (s.changes.some((c) => Math.abs(c - 300) <= 5)) found++
  }
  assert.ok(plain >= 30, `plain ${plain}`)
  assert.ok(corrected <= 15, `corrected ${corrected}`)
  assert.ok(found >= 9, `found ${found}`)
  const e = catchCased(() => segment([1, 2, 3], { penalty_scale: -1 }), 'validation')
  assert.deepEqual(fieldNames(e), ['penalty_scale'])
})
