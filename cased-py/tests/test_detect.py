"""Detectors through the bindings: the generic ``Detector`` (streaming and batch, lists and
buffers), the one-shot comparisons, and their validation. Expected values are the core's
pinned cases (cased-core/src/detect/spike.rs) or computed here from their definitions."""

from __future__ import annotations

import array
import math
import random
import statistics
from typing import Any

import numpy as np
import pytest

import cased
from cased import Detector

MAD_TO_SIGMA = 1.4826022185056018

# cased-core detect/spike.rs `robust_z_matches_a_direct_computation`: one spike, at index 10.
SPIKE = [10.0, 12.0, 11.0, 13.0, 9.0, 10.0, 11.0, 12.0, 10.0, 11.0, 30.0]


def spike(**settings: Any) -> Detector:
    return Detector({"type": "spike", "metric": "latency_ms", **settings})


def robust_z(window: list[float], x: float) -> float:
    med = statistics.median(window)
    mad = statistics.median(abs(w - med) for w in window)
    return (x - med) / (MAD_TO_SIGMA * mad)


def test_the_pinned_spike_case_gives_the_core_answer() -> None:
    [finding] = spike(window=10).detect(SPIKE)
    assert finding["index"] == 10
    assert finding["statistic"] == pytest.approx(robust_z(SPIKE[:10], 30.0), rel=1e-12)
    assert (finding["metric"], finding["detector"], finding["kind"]) == ("latency_ms", "spike", "alarm")
    assert finding["current"] == 30.0 and finding["baseline"] == 11.0
    assert finding["message"].startswith("latency_ms spiked to 30")
    assert finding["severity"] == "warning"


def test_spike_refresh_picks_the_exact_or_the_hopping_reference() -> None:
    # window 10: refresh 1 judges row i against xs[i-10:i]; the default (refresh = window)
    # against the 10 values before 10 * (i // 10) (see cased-core detect/spike.rs).
    rng = random.Random(3)
    xs = [rng.gauss(50, 5) for _ in range(200)]
    for refresh, end in [(1, lambda i: i), (None, lambda i: 10 * (i // 10))]:
        settings = {"window": 10, "min_samples": 10, "threshold": 0.5}
        if refresh is not None:
            settings["refresh"] = refresh
        found = spike(**settings).detect(xs)
        want = {i: robust_z(xs[end(i) - 10 : end(i)], xs[i]) for i in range(10, 200)}
        want = {i: z for i, z in want.items() if abs(z) > 0.5}
        assert [f["index"] for f in found] == sorted(want)
        assert [f["statistic"] for f in found] == pytest.approx([want[f["index"]] for f in found], rel=1e-12)
    with pytest.raises(cased.ValidationError, match="refresh"):
        spike(window=10, refresh=11)


def test_likelihood_alarms_once_on_a_value_beyond_the_range_seen() -> None:
    # cased-core detect/likelihood.rs `a_value_beyond_the_range_seen_alarms_once...`: a bounded
    # series, one value 1 above the past range widened by 5 %, another inside the quiet period.
    xs = np.array([100.0 + 10.0 * math.sin(i * 0.1) for i in range(1000)])
    lo, hi = xs[:600].min(), xs[:600].max()
    bound = hi + 0.05 * (hi - lo)
    xs[600], xs[650] = bound + 1.0, bound + 50.0
    config = {"type": "likelihood", "metric": "m", "tail": 1e-300}
    [found] = Detector(config).detect(xs)
    assert (found["index"], found["detector"], found["p_value"]) == (600, "likelihood", None)
    assert found["baseline"] == pytest.approx(bound, rel=1e-12)
    assert found["rule"].startswith("outside the range")
    streaming = Detector(config)
    assert [f for f in (streaming.update(float(x)) for x in xs) if f is not None] == [found]
    with pytest.raises(cased.ValidationError, match="tail"):
        Detector({"type": "likelihood", "metric": "m", "tail": 0.7})


def test_context_finds_a_missing_cycle_from_the_values_that_followed_similar_contexts() -> None:
    # cased-core detect/context.rs `a_broken_pattern_inside_the_usual_range_is_found...`, without
    # noise: a wave of period 50 whose 41st cycle stays at its middle, inside the range seen.
    xs = [100.0 + 20.0 * math.sin(2 * math.pi * i / 50) for i in range(3000)]
    xs[2000:2050] = [100.0] * 50
    [found] = Detector({"type": "context", "metric": "m"}).detect(xs)
    i = found["index"]
    assert 2000 <= i < 2015 and found["detector"] == "context"
    assert found["rule"].startswith("context likelihood") and found["p_value"] < 1e-5
    # Its baseline is the prediction: the mean of what followed the 3 nearest windows of 16
    # values among the last 1000 that end before the current 16 begin (squared distance).
    current = xs[i - 16 : i]
    windows = range(max(0, i - 16 - 1000), i - 32 + 1)
    dist = sorted((sum((a - b) ** 2 for a, b in zip(xs[j : j + 16], current)), xs[j + 16]) for j in windows)
    assert found["baseline"] == pytest.approx(sum(v for _, v in dist[:3]) / 3, rel=1e-9)
    # The robust z of a value at the median is 0: the likelihood detector sees nothing there.
    assert not [f for f in Detector({"type": "likelihood", "metric": "m"}).detect(xs) if 2000 <= f["index"] < 2100]
    with pytest.raises(cased.ValidationError, match="neighbours"):
        Detector({"type": "context", "metric": "m", "neighbours": 0})


def seeded(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    xs = [100.0 + rng.gauss(0, 5) for _ in range(n)]
    for i in (200, 555, 901):
        xs[i] += 60.0
    return xs


@pytest.mark.parametrize(
    "config",
    [
        {"type": "spike", "threshold": 4.0},
        {"type": "cusum"},
        {"type": "ewma"},
        {"type": "threshold", "upper": 130.0},
        {"type": "trend"},
        {"type": "changepoint"},
    ],
    ids=lambda c: c["type"],
)
def test_batch_equals_streaming_for_lists_arrays_and_numpy(config: dict[str, Any]) -> None:
    xs = seeded(1000, seed=7)
    streamed = []
    detector = Detector({**config, "metric": "m"})
    for i, x in enumerate(xs):
        found = detector.update(x)
        if found is not None:
            assert found["index"] == i
            streamed.append(found)
    assert detector.score() >= 0
    batches = [
        Detector({**config, "metric": "m"}).detect(xs),
        Detector({**config, "metric": "m"}).detect(array.array("d", xs)),
        Detector({**config, "metric": "m"}).detect(np.asarray(xs, dtype=np.float64)),
        Detector({**config, "metric": "m"}).detect(tuple(xs)),
    ]
    for batch in batches:
        assert batch == streamed
    if config["type"] in {"spike", "threshold"}:
        assert {f["index"] for f in streamed} >= {200, 555, 901}


def test_buffers_of_other_layouts_and_item_types() -> None:
    xs = np.asarray(SPIKE, dtype=np.float64)
    want = spike(window=10).detect(SPIKE)
    # A strided view is read in order, a float32 or int buffer converted.
    assert spike(window=10).detect(np.repeat(xs, 2)[::2]) == want
    assert spike(window=10).detect(xs.astype(np.float32)) == want
    assert spike(window=10).detect(array.array("i", [int(x) for x in SPIKE])) == want
    assert spike(window=10).detect(np.asarray(xs, dtype=">f8")) == want
    with pytest.raises(TypeError, match="one-dimensional"):
        spike().detect(xs.reshape(1, -1))
    with pytest.raises(TypeError, match="got str"):
        spike().detect("1,2,3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got dict"):
        spike().detect({"a": 1.0})  # type: ignore[arg-type]
    assert spike().detect([]) == []


def test_batches_continue_the_stream_and_reset_forgets() -> None:
    detector = spike(window=10)
    assert detector.detect(SPIKE[:10]) == []
    [found] = detector.detect(SPIKE[10:])
    assert found["index"] == 10
    detector.reset()
    assert detector.score() == 0
    assert [f["index"] for f in detector.detect(SPIKE)] == [10]


def test_non_finite_values_are_validation_errors() -> None:
    detector = spike(window=10)
    with pytest.raises(cased.ValidationError) as exc:
        detector.update(float("nan"))
    assert exc.value.errors[0]["field"] == "value"
    with pytest.raises(cased.ValidationError) as batch:
        detector.detect(np.array([1.0, 2.0, np.inf]))
    assert batch.value.errors[0]["field"] == "values[2]"


def test_the_baseline_detector_takes_a_baseline() -> None:
    rng = random.Random(3)
    before = [100 + rng.gauss(0, 5) for _ in range(200)]
    after = [130 + rng.gauss(0, 5) for _ in range(60)]
    detector = Detector({"type": "baseline", "metric": "p99", "allowed_change": 0.1})
    assert detector.detect(after) == [], "no baseline: nothing to compare with"
    detector.reset()
    detector.set_baseline(np.asarray(before))
    [finding] = detector.detect(after)
    assert finding["detector"] == "baseline" and finding["p_value"] < 0.05
    assert finding["severity"] != "info"
    assert finding["message"].startswith("p99 rose")
    with pytest.raises(cased.ValidationError, match="only baseline and shift detectors"):
        spike().set_baseline([1.0, 2.0])


def test_configuration_is_validated_by_the_core() -> None:
    detector = Detector({"type": "cusum", "metric": "cpu", "name": "cpu-shift"})
    assert (detector.type, detector.metric, detector.name) == ("cusum", "cpu", "cpu-shift")
    assert detector.config()["type"] == "cusum" and detector.config()["metric"] == "cpu"
    assert repr(detector) == "Detector(type='cusum', metric='cpu', name='cpu-shift')"
    cases = [
        ({"type": "spike", "metric": "m", "windw": 3}, "config", "unknown field `windw`"),
        ({"type": "spike"}, "config", "missing field `metric`"),
        ({"type": "sparkle", "metric": "m"}, "config", "unknown variant `sparkle`"),
        ({"type": "spike", "metric": "m", "window": 1}, "window", "at least 3"),
        ({"type": "error_rate", "metric": "m"}, "type", "compare_error_rates"),
    ]
    for config, field, words in cases:
        with pytest.raises(cased.ValidationError) as exc:
            Detector(config)
        assert exc.value.errors[0]["field"] == field, exc.value.errors
        assert words in exc.value.errors[0]["message"]
    with pytest.raises(cased.ValidationError) as exc:
        Detector({"type": "spike", "metric": object()})
    assert exc.value.errors[0]["field"] == "metric"
    assert "is a Python object, which JSON cannot hold" in exc.value.errors[0]["message"]


def test_compare_finds_a_shift_and_passes_a_control() -> None:
    rng = random.Random(11)
    baseline = np.asarray([100 + rng.gauss(0, 5) for _ in range(300)])
    worse = [125 + rng.gauss(0, 5) for _ in range(100)]
    same = [100 + rng.gauss(0, 5) for _ in range(100)]
    found = cased.compare(baseline, worse, {"allowed_change": 0.1}, metric="latency_ms")
    assert found["location_alarm"] and found["finding"] is not None
    assert found["finding"]["metric"] == "latency_ms"
    assert found["shift"]["lower"] < found["shift"]["shift"] < found["shift"]["upper"]
    assert found["shift"]["shift"] == pytest.approx(25, abs=3)
    assert (found["n_baseline"], found["n_current"], found["look"]) == (300, 100, 1)
    quiet = cased.compare(baseline, array.array("d", same))
    assert not quiet["location_alarm"] and not quiet["spread_alarm"] and quiet["finding"] is None
    with pytest.raises(cased.ValidationError) as small:
        cased.compare([1.0, 2.0], [3.0, 4.0])
    assert small.value.errors[0]["field"] == "samples"
    with pytest.raises(cased.ValidationError) as bad:
        cased.compare(baseline, worse, {"alpha": 2})
    assert bad.value.errors[0]["field"] == "alpha"
    named = cased.compare(baseline, worse, {"allowed_change": 0.1, "name": "p50_latency"})
    assert named["finding"]["detector"] == "p50_latency"
    with pytest.raises(cased.ValidationError) as typed:
        cased.compare(baseline, worse, {"type": "spike"})
    assert typed.value.errors[0]["field"] == "config.type"


def test_the_mann_whitney_statistic_matches_its_definition() -> None:
    baseline = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    current = [x + 20 for x in baseline]
    found = cased.compare(baseline, current, {"allowed_change": 0, "spread": False})
    # Every current value beats every baseline value: U = n1 * n2.
    assert found["location"]["u"] == 100
    assert found["shift"]["shift"] == 20


def test_compare_tests_the_tail_when_asked() -> None:
    rng = random.Random(3)
    baseline = [100 + rng.gauss(0, 5) for _ in range(400)]
    current = [100 + rng.gauss(0, 5) + (30 if i % 12 == 0 else 0) for i in range(400)]
    found = cased.compare(baseline, current, {"spread": False, "tail_quantile": 0.95})
    assert not found["location_alarm"] and found["tail_alarm"]
    assert found["tail"]["baseline_beyond"] == 20 and found["tail"]["current_beyond"] > 40
    assert found["finding"]["message"].startswith("value has a heavier tail: ")
    assert cased.compare(baseline, current, {"spread": False})["tail"] is None
    with pytest.raises(cased.ValidationError) as bad:
        cased.compare(baseline, current, {"tail_quantile": 0.2})
    assert bad.value.errors[0]["field"] == "tail_quantile"


def test_compare_error_rates_uses_counts() -> None:
    found = cased.compare_error_rates((10, 10_000), (100, 10_000))
    assert found["alarm"] and found["finding"]["detector"] == "error_rate"
    assert found["finding"]["effect_size"] == pytest.approx(9.0)
    assert found["baseline"] == {"errors": 10, "requests": 10_000}
    quiet = cased.compare_error_rates((10, 10_000), (11, 10_000), {"allowed_change": 0.5})
    assert not quiet["alarm"] and quiet["finding"] is None
    with pytest.raises(cased.ValidationError) as exc:
        cased.compare_error_rates((5, 4), (1, 10))
    assert exc.value.errors[0]["field"] == "errors"
    with pytest.raises(TypeError, match="pair"):
        cased.compare_error_rates((1.5, 10), (1, 10))  # type: ignore[arg-type]


def test_a_look_number_spends_alpha_across_a_loop_of_calls() -> None:
    baseline = [100.0 + i % 10 for i in range(40)]
    current = [v * 1.3 for v in baseline]
    once = cased.compare(baseline, current)
    third = cased.compare(baseline, current, look=3)
    assert (once["look"], third["look"]) == (1, 3)
    assert third["level"] < once["level"] / 9
    one = cased.compare_error_rates((50, 10_000), (95, 10_000))
    late = cased.compare_error_rates((50, 10_000), (95, 10_000), look=40)
    assert one["alarm"] and late["p_value"] == one["p_value"]
    assert not late["alarm"] and late["finding"] is None
    with pytest.raises(cased.ValidationError) as exc:
        cased.compare(baseline, current, look=0)
    assert exc.value.errors[0]["field"] == "look"


def test_the_shift_detector_judges_each_value_against_its_baseline() -> None:
    rng = random.Random(4)
    detector = Detector({"type": "shift", "metric": "cpu", "trend": False})
    assert detector.update(50.0) is None, "no baseline, no verdict"
    detector.set_baseline([40 + rng.gauss(0, 2) for _ in range(360)])
    post = [40 + rng.gauss(0, 2) for _ in range(20)] + [52 + rng.gauss(0, 2) for _ in range(20)]
    found = detector.detect(post)
    assert len(found) == 1, "fires once"
    assert 20 <= found[0]["index"] <= 23
    assert found[0]["rule"].startswith("shift z")
    with pytest.raises(cased.ValidationError) as exc:
        Detector({"type": "shift", "metric": "cpu", "clip": 0.1})
    assert exc.value.errors[0]["field"] == "clip"


# --- detectors in sessions -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_session_judges_pushed_samples_against_a_numpy_baseline() -> None:
    import asyncio

    rng = random.Random(5)
    config = {
        "schedule": {"intervals": ["50ms"], "cooldown": "300ms"},
        "verdict": {"min_samples": 1},
        "detectors": [
            {"type": "baseline", "metric": "latency_ms", "allowed_change": 0.1, "min_samples": 20},
            {"type": "error_rate", "metric": "requests"},
        ],
    }
    baseline = np.asarray([100 + rng.gauss(0, 5) for _ in range(200)])
    monitor = cased.Monitor(config, baselines={"latency_ms": baseline})
    session = await monitor.start({"deployment_request": "Deploy v2", "status": "running"})
    for _ in range(60):
        session.push("latency_ms", 140 + rng.gauss(0, 5))
    session.push_counts("requests", 1, 1000)
    with pytest.raises(cased.ValidationError) as exc:
        session.push_counts("requests", 5, 4)
    assert exc.value.errors[0]["field"] == "errors"
    session.complete()
    report = await asyncio.wait_for(session.wait(), 10)
    found = [(f["metric"], f["detector"]) for f in report["findings"]]
    assert ("latency_ms", "baseline") in found, report["findings"]
    assert "requests" in report["no_data"], "the error-rate detector had no baseline counts"
