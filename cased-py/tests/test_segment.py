"""cased.segment: offline PELT segmentation, the same answers as the core (and ruptures)."""
import array
import json
import pathlib
import random

import pytest

import cased

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "cased-core" / "tests" / "fixtures" / "segment_ruptures.json"


def steps(levels, noise, seed):
    rng = random.Random(seed)
    return [level + rng.gauss(0, noise) for level, n in levels for _ in range(n)]


def test_finds_known_changes_with_each_cost():
    xs = steps([(0.0, 100), (4.0, 80), (-1.0, 120)], 1.0, 7)
    for cost in ("normal_mean", "normal_meanvar"):
        found = cased.segment(xs, {"cost": cost})
        assert len(found["changes"]) == 2, found["changes"]
        assert abs(found["changes"][0] - 100) <= 2 and abs(found["changes"][1] - 180) <= 2
        assert [s["start"] for s in found["segments"]] == [0] + found["changes"]
        assert found["segments"][-1]["end"] == 300
        assert abs(found["segments"][1]["mean"] - 4.0) < 0.5
        assert found["cost"] == cost
    counts = [float(c) for c in [20] * 100 + [40] * 100]
    found = cased.segment(counts, {"cost": "poisson"})
    assert found["changes"] == [100]


def test_stationary_series_has_no_change_and_buffers_are_read():
    xs = array.array("d", steps([(5.0, 400)], 2.0, 11))
    found = cased.segment(xs)
    assert found["changes"] == []
    assert found["penalty"] == pytest.approx(4 * __import__("math").log(400))


def test_same_changes_as_ruptures_on_the_pinned_series():
    cases = json.loads(FIXTURE.read_text())["cases"]
    for i, case in enumerate(cases):
        found = cased.segment(case["values"], {"cost": case["cost"], "penalty": case["penalty"], "min_size": case["min_size"]})
        assert found["changes"] == case["ruptures_changes"], i


def field(call):
    with pytest.raises(cased.ValidationError) as exc:
        call()
    return exc.value.errors[0]["field"]


def test_bad_input_names_the_field():
    assert field(lambda: cased.segment([1.0, float("nan")])) == "values[1]"
    assert field(lambda: cased.segment([1.0, 2.0, -3.0], {"cost": "poisson"})) == "values[2]"
    assert field(lambda: cased.segment([1.0], {"cost": "median"})) == "cost"
    with pytest.raises(cased.ValidationError, match="values"):
        cased.segment([])
    with pytest.raises(cased.ValidationError, match="penalty"):
        cased.segment([1.0, 2.0], {"penalty": "aic"})
    with pytest.raises(cased.ValidationError, match="min_size"):
        cased.segment([1.0, 2.0], {"min_size": 0})
    with pytest.raises(cased.ValidationError, match="colour"):
        cased.segment([1.0, 2.0], {"colour": "red"})
    with pytest.raises(TypeError):
        cased.segment("1,2,3")


def ar1_steps(levels, rho, seed):
    """AR(1) noise (marginal sd 1, lag-1 autocorrelation `rho`) around the given levels."""
    rng = random.Random(seed)
    x, out = 0.0, []
    for level, n in levels:
        for _ in range(n):
            x = rho * x + (1 - rho * rho) ** 0.5 * rng.gauss(0, 1)
            out.append(level + x)
    return out


def test_the_autocorrelation_correction_keeps_the_real_change_only():
    plain = corrected = found = 0
    for seed in range(10):
        xs = ar1_steps([(0.0, 300), (4.0, 300)], 0.8, seed)
        plain += len(cased.segment(xs)["changes"])
        s = cased.segment(xs, {"autocorrelation": True, "penalty_scale": 1.0})
        assert 0.5 < s["autocorrelation"] <= 0.9
        corrected += len(s["changes"])
        found += any(abs(c - 300) <= 5 for c in s["changes"])
    assert plain >= 30, plain
    assert corrected <= 15, corrected
    assert found >= 9, found
    with pytest.raises(cased.ValidationError, match="penalty_scale"):
        cased.segment([1.0, 2.0, 3.0], {"penalty_scale": -1})
