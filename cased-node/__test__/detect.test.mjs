import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import { Detector, compare, compareErrorRates } from '../index.js'
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

/** A seeded normal generator (mulberry32 and Box–Muller): `gauss(mu, sigma)`, like Python's. */
function rng(seed) {
  let a = seed >>> 0
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
  return {
    gauss: (mu, sigma) => mu + sigma * Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
  }
}

const normal = (r, n, mu, sigma) => Array.from({ length: n }, () => r.gauss(mu, sigma))

/** The robust z of `x` against `w` (median / MAD, as numpy). */
function robustZ(w, x) {
  const median = (v) => {
    const s = [...v].sort((a, b) => a - b)
    const h = s.length >> 1
    return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2
  }
  const m = median(w)
  return (x - m) / (1.4826022185056018 * median(w.map((v) => Math.abs(v - m))))
}

describe('Detector', () => {
  test('likelihood: one alarm on a value beyond the range seen, as in the core', () => {
    // cased-core detect/likelihood.rs `a_value_beyond_the_range_seen_alarms_once...`
    const xs = Float64Array.from({ length: 1000 }, (_, i) => 100 + 10 * Math.sin(i * 0.1))
    const past = Array.from(xs.subarray(0, 600))
    const [lo, hi] = [Math.min(...past), Math.max(...past)]
    const bound = hi + 0.05 * (hi - lo)
    xs[600] = bound + 1
    xs[650] = bound + 50
    const config = { type: 'likelihood', metric: 'm', tail: 1e-300 }
    const found = new Detector(config).detect(xs)
    assert.deepEqual(found.map((f) => [f.index, f.detector, f.p_value]), [[600, 'likelihood', null]])
    assert.ok(Math.abs(found[0].baseline - bound) <= 1e-12 * bound)
    assert.match(found[0].rule, /^outside the range/)
    const streaming = new Detector(config)
    assert.deepEqual(Array.from(xs, (x) => streaming.update(x)).filter((f) => f !== null), found)
    const e = catchCased(() => new Detector({ type: 'likelihood', metric: 'm', tail: 0.7 }), 'validation')
    assert.match(e.message, /tail/)
  })

  test('context: a missing cycle is found from what followed similar contexts, as in the core', () => {
    // cased-core detect/context.rs `a_broken_pattern_inside_the_usual_range_is_found...`, without
    // noise: a wave of period 50 whose 41st cycle stays at its middle, inside the range seen.
    const xs = Float64Array.from({ length: 3000 }, (_, i) => 100 + 20 * Math.sin((2 * Math.PI * i) / 50))
    xs.fill(100, 2000, 2050)
    const found = new Detector({ type: 'context', metric: 'm' }).detect(xs)
    assert.equal(found.length, 1)
    const [f] = found
    assert.ok(f.index >= 2000 && f.index < 2015, `${f.index}`)
    assert.equal(f.detector, 'context')
    assert.match(f.rule, /^context likelihood/)
    // Its baseline is the prediction: the mean of what followed the 3 nearest windows of 16
    // values among the last 1000 that end before the current 16 begin (squared distance).
    const i = f.index
    const dist = []
    for (let j = Math.max(0, i - 16 - 1000); j <= i - 32; j++) {
      let d = 0
      for (let k = 0; k < 16; k++) d += (xs[j + k] - xs[i - 16 + k]) ** 2
      dist.push([d, xs[j + 16]])
    }
    dist.sort((a, b) => a[0] - b[0])
    const want = (dist[0][1] + dist[1][1] + dist[2][1]) / 3
    assert.ok(Math.abs(f.baseline - want) <= 1e-9 * want, `${f.baseline} vs ${want}`)
    // The robust z of a value at the median is 0: the likelihood detector sees nothing there.
    const z = new Detector({ type: 'likelihood', metric: 'm' }).detect(xs)
    assert.deepEqual(z.filter((g) => g.index >= 2000 && g.index < 2100), [])
    const e = catchCased(() => new Detector({ type: 'context', metric: 'm', neighbours: 0 }), 'validation')
    assert.match(e.message, /neighbours/)
  })

  test('spike: refresh picks the exact rolling or the hopping reference', () => {
    // window 10: refresh 1 judges row i against xs[i-10:i]; the default (refresh = window)
    // against the 10 values before 10 * floor(i / 10) (see cased-core detect/spike.rs).
    const xs = normal(rng(3), 200, 50, 5)
    for (const [refresh, end] of [
      [1, (i) => i],
      [undefined, (i) => 10 * Math.floor(i / 10)],
    ]) {
      const config = { type: 'spike', metric: 'm', window: 10, min_samples: 10, threshold: 0.5 }
      if (refresh !== undefined) config.refresh = refresh
      const found = new Detector(config).detect(xs)
      const want = []
      for (let i = 10; i < 200; i++) {
        const z = robustZ(xs.slice(end(i) - 10, end(i)), xs[i])
        if (Math.abs(z) > 0.5) want.push([i, z])
      }
      assert.deepEqual(found.map((f) => f.index), want.map(([i]) => i))
      found.forEach((f, k) => assert.ok(Math.abs(f.statistic - want[k][1]) <= 1e-12 * Math.abs(want[k][1]), `row ${f.index}`))
    }
    const e = catchCased(() => new Detector({ type: 'spike', metric: 'm', window: 10, refresh: 11 }), 'validation')
    assert.match(e.message, /refresh/)
  })

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
    e = catchCased(() => new Detector({ type: 'error_rate', metric: 'm' }), 'validation')
    assert.deepEqual(fieldNames(e), ['type'])
    assert.match(e.fields[0].message, /compareErrorRates/)
    const d = new Detector({ type: 'spike', metric: 'm' })
    e = catchCased(() => d.update(Number.NaN), 'validation')
    e = catchCased(() => d.detect([1, 2, Number.POSITIVE_INFINITY]), 'validation')
    assert.deepEqual(fieldNames(e), ['values[2]'])
  })
})

describe('Detector of type baseline', () => {
  const r = rng(3)
  const before = normal(r, 200, 100, 5)
  const after = normal(r, 60, 130, 5)

  test('compares the values fed with the baseline given to setBaseline', () => {
    const d = new Detector({ type: 'baseline', metric: 'p99', allowed_change: 0.1 })
    assert.equal(d.name, 'baseline')
    assert.deepEqual(d.detect(after), [], 'no baseline: nothing to compare with')
    d.reset()
    d.setBaseline(Float64Array.from(before))
    const [finding, ...rest] = d.detect(after)
    assert.deepEqual(rest, [], 'fires at most once until reset')
    assert.equal(finding.detector, 'baseline')
    assert.equal(finding.kind, 'alarm')
    assert.ok(finding.p_value < 0.05, `p = ${finding.p_value}`)
    assert.notEqual(finding.severity, 'info')
    assert.match(finding.message, /^p99 rose/)
    assert.ok(d.score >= 1, `score ${d.score}`)

    // update() takes the same looks as detect(); reset keeps the baseline.
    d.reset()
    assert.equal(d.score, 0)
    const streamed = after.map((x) => d.update(x)).filter((f) => f !== null)
    assert.deepEqual(streamed, [finding])
  })

  test('a control passes, and bad baselines and other types are validation errors', () => {
    const d = new Detector({ type: 'baseline', metric: 'p99', name: 'p99_shift' })
    d.setBaseline(before)
    assert.deepEqual(d.detect(normal(rng(5), 60, 100, 5)), [])
    assert.ok(d.score < 1, `score ${d.score}`)
    let e = catchCased(() => d.setBaseline([]), 'validation')
    e = catchCased(() => d.setBaseline([1, Number.NaN, 2]), 'validation')
    assert.equal(e.fields.length, 1)
    e = catchCased(() => new Detector({ type: 'spike', metric: 'm' }).setBaseline([1, 2]), 'validation')
    assert.deepEqual(fieldNames(e), ['type'])
    assert.match(e.message, /only baseline and shift detectors/)
  })
})

describe('compare', () => {
  // Seed 1 draws a control whose spread test is far from its level (p = 0.88): a control that
  // happens to fall in the 2.5% false-alarm region would fail the test for the wrong reason.
  const r = rng(1)
  const baseline = normal(r, 300, 100, 5)
  const worse = normal(r, 100, 125, 5)
  const same = normal(r, 100, 100, 5)

  test('finds a shift and passes a control', () => {
    const found = compare(Float64Array.from(baseline), worse, { allowed_change: 0.1 }, { metric: 'latency_ms' })
    assert.ok(found.location_alarm)
    assert.equal(found.finding.metric, 'latency_ms')
    assert.equal(found.finding.detector, 'baseline')
    assert.ok(found.shift.lower < found.shift.shift && found.shift.shift < found.shift.upper)
    assert.ok(Math.abs(found.shift.shift - 25) <= 3, `shift ${found.shift.shift}`)
    assert.deepEqual([found.n_baseline, found.n_current, found.look], [300, 100, 1])
    assert.equal(found.location.method, 'asymptotic')
    assert.equal(typeof found.spread.p_value, 'number')
    assert.ok(Math.abs(found.relative_change - found.shift.shift / found.baseline_median) < 1e-12)

    const quiet = compare(baseline, Float64Array.from(same))
    assert.equal(quiet.location_alarm, false)
    assert.equal(quiet.spread_alarm, false)
    assert.equal(quiet.finding, null)
  })

  test('an Array and a Float64Array give the same result; the metric defaults to value', () => {
    const a = compare(baseline, worse)
    assert.deepEqual(compare(Float64Array.from(baseline), Float64Array.from(worse)), a)
    assert.deepEqual(compare(baseline, worse, null, {}), a)
    assert.deepEqual(compare(baseline, worse, undefined, { metric: undefined }), a)
    assert.equal(a.finding.metric, 'value')
    assert.match(a.finding.message, /^value /)
  })

  test('the Mann–Whitney statistic matches its definition', () => {
    const b = [1, 2, 2, 3, 4, 5, 6, 7, 8, 9]
    const found = compare(b, b.map((x) => x + 20), { allowed_change: 0, spread: false })
    // Every current value beats every baseline value: U = n1 * n2.
    assert.equal(found.location.u, 100)
    assert.equal(found.shift.shift, 20)
    assert.equal(found.spread, null)
    assert.equal(found.spread_alarm, false)
  })

  test('tests the tail when asked', () => {
    const t = rng(3)
    const base = normal(t, 400, 100, 5)
    const current = normal(t, 400, 100, 5).map((x, i) => x + (i % 12 === 0 ? 30 : 0))
    const found = compare(base, current, { spread: false, tail_quantile: 0.95 })
    assert.equal(found.location_alarm, false)
    assert.equal(found.tail_alarm, true)
    assert.equal(found.tail.baseline_beyond, 20)
    assert.ok(found.tail.current_beyond > 40, `${found.tail.current_beyond} beyond`)
    assert.equal(found.tail.quantile, 0.95)
    assert.equal(found.tail.lower, false)
    assert.match(found.finding.message, /^value has a heavier tail: /)
    assert.equal(compare(base, current, { spread: false }).tail, null)
    const e = catchCased(() => compare(base, current, { tail_quantile: 0.2 }), 'validation')
    assert.deepEqual(fieldNames(e), ['tail_quantile'])
  })

  test('settings name the finding and are validated by the core', () => {
    const named = compare(baseline, worse, { allowed_change: 0.1, name: 'p50_latency' })
    assert.equal(named.finding.detector, 'p50_latency')
    let e = catchCased(() => compare([1, 2], [3, 4]), 'validation')
    assert.deepEqual(fieldNames(e), ['samples'])
    e = catchCased(() => compare(baseline, worse, { alpha: 2 }), 'validation')
    assert.deepEqual(fieldNames(e), ['alpha'])
    e = catchCased(() => compare(baseline, worse, { type: 'spike' }), 'validation')
    assert.deepEqual(fieldNames(e), ['config.type'])
    e = catchCased(() => compare(baseline, worse, { metric: 'x' }), 'validation')
    assert.deepEqual(fieldNames(e), ['config.metric'])
    e = catchCased(() => compare(baseline, worse, { alowed_change: 0.1 }), 'validation')
    assert.match(e.message, /alowed_change/)
    e = catchCased(() => compare(baseline, [...worse.slice(0, 20), Number.NaN]), 'validation')
    assert.equal(e.fields.length, 1)
    e = catchCased(() => compare(baseline, worse, null, { metrc: 'x' }), 'validation')
    assert.deepEqual(fieldNames(e), ['metrc'])
    e = catchCased(() => compare(baseline, worse, null, { metric: 5 }), 'validation')
    assert.deepEqual(fieldNames(e), ['metric'])
    e = catchCased(() => compare(baseline, worse, null, 'latency'), 'validation')
    assert.deepEqual(fieldNames(e), ['options'])
  })
})

describe('shift detector', () => {
  test('judges each value against its baseline and fires once', () => {
    let seed = 7
    const noise = () => {
      seed = (seed * 16807) % 2147483647
      return (seed / 2147483647 - 0.5) * 4
    }
    const detector = new Detector({ type: 'shift', metric: 'cpu' })
    detector.setBaseline(Array.from({ length: 360 }, () => 40 + noise()))
    const post = [...Array.from({ length: 20 }, () => 40 + noise()), ...Array.from({ length: 20 }, () => 52 + noise())]
    const found = detector.detect(post)
    assert.equal(found.length, 1)
    assert.ok(found[0].index >= 20 && found[0].index <= 23, `index ${found[0].index}`)
    assert.match(found[0].rule, /^shift z/)
    const e = catchCased(() => new Detector({ type: 'shift', metric: 'cpu', clip: 0.1 }), 'validation')
    assert.deepEqual(fieldNames(e), ['clip'])
  })
})

describe('compareErrorRates', () => {
  test('judges counts', () => {
    const found = compareErrorRates([10, 10_000], [100, 10_000])
    assert.equal(found.alarm, true)
    assert.equal(found.finding.detector, 'error_rate')
    assert.equal(found.finding.metric, 'errors')
    assert.ok(Math.abs(found.finding.effect_size - 9) < 1e-9, `effect ${found.finding.effect_size}`)
    assert.deepEqual(found.baseline, { errors: 10, requests: 10_000 })
    assert.deepEqual(found.current, { errors: 100, requests: 10_000 })
    assert.equal(found.look, 1)
    assert.ok(found.p_value < found.level)

    const quiet = compareErrorRates([10, 10_000], [11, 10_000], { allowed_change: 0.5 })
    assert.equal(quiet.alarm, false)
    assert.equal(quiet.finding, null)

    const named = compareErrorRates([10, 10_000], [100, 10_000], { name: 'http_errors' }, { metric: 'http' })
    assert.equal(named.finding.detector, 'http_errors')
    assert.match(named.finding.message, /^http /)
  })

  test('a look number spends alpha across a loop of calls', () => {
    const one = compareErrorRates([50, 10_000], [95, 10_000])
    const late = compareErrorRates([50, 10_000], [95, 10_000], null, { look: 40 })
    assert.equal(one.alarm, true)
    assert.equal(late.look, 40)
    assert.equal(late.p_value, one.p_value)
    assert.equal(late.alarm, false)
    assert.equal(late.finding, null)
    const baseline = Array.from({ length: 40 }, (_, i) => 100 + (i % 10))
    const current = baseline.map((v) => v * 1.3)
    const third = compare(baseline, current, null, { look: 3 })
    assert.equal(third.look, 3)
    assert.ok(third.level < compare(baseline, current).level / 9)
    const e = catchCased(() => compare(baseline, current, null, { look: 0 }), 'validation')
    assert.deepEqual(fieldNames(e), ['look'])
  })

  test('counts must be pairs of non-negative integers, errors at most requests', () => {
    let e = catchCased(() => compareErrorRates([5, 4], [1, 10]), 'validation')
    assert.deepEqual(fieldNames(e), ['errors'])
    for (const bad of [[1.5, 10], [-1, 10], [Number.NaN, 10], [1, Number.POSITIVE_INFINITY], [1, 2 ** 60], [1], [1, 2, 3], ['1', 10], { errors: 1, requests: 10 }, null, 7]) {
      e = catchCased(() => compareErrorRates(bad, [1, 10]), 'validation')
      assert.deepEqual(fieldNames(e), ['baseline'], JSON.stringify(bad))
      assert.match(e.message, /\[errors, requests\] pair of non-negative integers/)
      e = catchCased(() => compareErrorRates([1, 10], bad), 'validation')
      assert.deepEqual(fieldNames(e), ['current'], JSON.stringify(bad))
    }
    e = catchCased(() => compareErrorRates([1, 10], [1, 10], { alpha: 0 }), 'validation')
    assert.deepEqual(fieldNames(e), ['alpha'])
    e = catchCased(() => compareErrorRates([1, 10], [1, 10], { type: 'baseline' }), 'validation')
    assert.deepEqual(fieldNames(e), ['config.type'])
  })
})
