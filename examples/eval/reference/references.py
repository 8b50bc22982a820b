#!/usr/bin/env python3
"""Computes the reference values pasted into cased-core's detector tests.

Run from a throwaway venv:  python -m venv /tmp/v && /tmp/v/bin/pip install scipy numpy pymannkendall
then  /tmp/v/bin/python examples/eval/reference/references.py
(values in the tests were computed with scipy 1.17.1, numpy 2.4.6, pymannkendall 1.4.3).
"""
import math

import numpy as np
import pymannkendall as mk
import scipy
from scipy import stats

print("scipy", scipy.__version__, "numpy", np.__version__)

# --- the shared reference series (a seeded normal with a +1.5 step at 40) ---------------
rng = np.random.default_rng(42)
xs = np.round(rng.normal(size=80), 3)
xs[40:] += 1.5
print("SERIES =", "[" + ", ".join(repr(float(v)) for v in xs) + "]")

# --- CUSUM: target 0, sigma 1, k 0.5, h 4, restart at 0 after an alarm ---------------------
sp = sn = 0.0
alarms = []
for i, z in enumerate(xs):
    sp = max(0.0, sp + z - 0.5)
    sn = max(0.0, sn - z - 0.5)
    if sp > 4 or sn > 4:
        alarms.append(i)
        sp = sn = 0.0
print("CUSUM_ALARMS =", alarms)

# --- EWMA: target 0, sigma 1, lambda 0.2, L 3, exact limits, no restart ---------------------
lam, L = 0.2, 3.0
z = 0.0
alarms = []
for t, x in enumerate(xs, start=1):
    z = lam * x + (1 - lam) * z
    lim = L * math.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * t)))
    if abs(z) > lim:
        alarms.append(t - 1)
print("EWMA_ALARMS =", alarms)

# --- Mann-Whitney with ties ------------------------------------------------------------
a = [1.1, 2.0, 2.0, 3.5, 4.0, 4.0, 5.2, 6.0, 7.1, 8.0, 8.0, 9.3]
b = [0.5, 1.1, 2.0, 2.2, 3.0, 3.5, 3.5, 4.0, 4.1, 5.0]
for alt in ["two-sided", "greater", "less"]:
    r = stats.mannwhitneyu(a, b, alternative=alt, method="asymptotic", use_continuity=True)
    print("mannwhitneyu(a, b, alternative=%r, method='asymptotic')" % alt, repr(float(r.statistic)), repr(float(r.pvalue)))
# exact, no ties, n = 7 and 9
c = [3.1, 4.7, 5.2, 6.8, 7.4, 8.9, 9.6]
d = [1.2, 2.3, 2.9, 3.4, 4.1, 5.5, 5.9, 6.1, 7.0]
for alt in ["two-sided", "greater", "less"]:
    r = stats.mannwhitneyu(c, d, alternative=alt, method="exact")
    print("mannwhitneyu(c, d, alternative=%r, method='exact')" % alt, repr(float(r.statistic)), repr(float(r.pvalue)))
r = stats.mannwhitneyu([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], method="exact")
print("separated 5 v 5 exact", r.statistic, repr(float(r.pvalue)))
# large, asymptotic, seeded
rng = np.random.default_rng(7)
big_x = np.round(rng.normal(0.3, 1, 200), 2)
big_y = np.round(rng.normal(0.0, 1, 150), 2)
r = stats.mannwhitneyu(big_x, big_y, alternative="two-sided", method="asymptotic")
print("big asymptotic", repr(float(r.statistic)), repr(float(r.pvalue)))
np.savetxt("/tmp/dscratch/big_x.txt", big_x)
np.savetxt("/tmp/dscratch/big_y.txt", big_y)

# --- Hodges-Lehmann and its CI (brute force over all pairwise differences) ---------------
def hl(x, y, conf):
    diffs = np.sort(np.subtract.outer(np.asarray(x), np.asarray(y)).ravel())
    n1, n2 = len(x), len(y)
    zq = stats.norm.ppf(1 - (1 - conf) / 2)
    C = math.floor(n1 * n2 / 2 - zq * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    C = min(max(C, 1), n1 * n2)
    return float(np.median(diffs)), float(diffs[C - 1]), float(diffs[n1 * n2 - C])
print("HL(a, b, 0.95)", hl(a, b, 0.95))
print("HL(big_x, big_y, 0.95)", hl(big_x, big_y, 0.95))
print("HL(c, d, 0.90)", hl(c, d, 0.90))

# --- Brown-Forsythe --------------------------------------------------------------------
r = stats.levene(a, b, center="median")
print("levene(a, b, center='median')", repr(float(r.statistic)), repr(float(r.pvalue)))
r = stats.levene(big_x, big_y * 2, center="median")
print("levene(big_x, 2*big_y, center='median')", repr(float(r.statistic)), repr(float(r.pvalue)))

# --- Mann-Kendall and Theil-Sen ----------------------------------------------------------
t = [3.0, 4.0, 4.0, 2.0, 5.0, 6.0, 6.0, 6.0, 5.0, 7.0, 8.0, 7.0, 9.0, 9.0, 10.0, 8.0, 11.0, 12.0, 12.0, 11.0]
r = mk.original_test(t)
print("mk.original_test(t)", "S", r.s, "var", repr(r.var_s), "z", repr(r.z), "tau", repr(r.Tau), "p", repr(r.p), "slope", repr(r.slope), "intercept", repr(r.intercept))
ts = stats.theilslopes(t)
print("theilslopes(t)", repr(float(ts.slope)), repr(float(ts.intercept)))
rng = np.random.default_rng(3)
w = np.round(np.cumsum(rng.normal(0, 1, 300)) * 0.1 + rng.normal(0, 1, 300), 1)
np.savetxt("/tmp/dscratch/mk_w.txt", w)
r = mk.original_test(w)
print("mk.original_test(w)", "S", r.s, "var", repr(r.var_s), "z", repr(r.z), "tau", repr(r.Tau), "p", repr(r.p))
ts = stats.theilslopes(w)
print("theilslopes(w)", repr(float(ts.slope)), repr(float(ts.intercept)))

# --- Poisson conditional test = binomtest ----------------------------------------------
print("binomtest(12, 22, 1000/3000, greater)", repr(stats.binomtest(12, 22, 1000 / 3000, alternative="greater").pvalue))
print("binomtest(12, 22, 1100/3100, greater)", repr(stats.binomtest(12, 22, 1100 / 3100, alternative="greater").pvalue))
