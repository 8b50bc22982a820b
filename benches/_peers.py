"""Helpers shared by the peer comparisons in benches/ (`peers_detect.py`, `peers_python_api.py`):
a median timer and numpy's rolling z-scores, each returning the number of alarms so that both
sides of a comparison can be checked to agree before their times count."""
import time

import numpy as np

MAD_TO_SIGMA = 1.482602218505602


def med(f, reps):
    ts, out = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def numpy_robust_z_alarms(xs, w, t):
    """Alarms of the exact rolling robust z over the previous w values (rows w.. only)."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(xs[:-1], w)  # window for row i = xs[i-w:i], rows w..n-1
    alarms = 0
    for lo in range(0, len(win), 50_000):  # chunks keep memory bounded
        wv = win[lo : lo + 50_000]
        m = np.median(wv, axis=1)
        mad = np.median(np.abs(wv - m[:, None]), axis=1)
        z = (xs[w + lo : w + lo + len(wv)] - m) / (MAD_TO_SIGMA * mad)
        alarms += int(np.count_nonzero(np.abs(z) > t))
    return alarms


def numpy_hopping_robust_z_alarms(xs, w, t):
    """cased's default: row i (>= w) against the median / MAD of the w values before w * (i // w)."""
    nb = len(xs) // w
    blocks = xs[: nb * w].reshape(nb, w)
    m = np.median(blocks, axis=1)
    mad = np.median(np.abs(blocks - m[:, None]), axis=1)
    rows = np.arange(w, len(xs))
    b = rows // w - 1
    z = (xs[rows] - m[b]) / (MAD_TO_SIGMA * mad[b])
    return int(np.count_nonzero(np.abs(z) > t))


def numpy_rolling_z_alarms(xs, w, t):
    """The issue's peer: z against the mean / std of the previous w values, from cumulative sums."""
    c1 = np.concatenate(([0.0], np.cumsum(xs)))
    c2 = np.concatenate(([0.0], np.cumsum(xs * xs)))
    s1 = c1[w:-1] - c1[: -w - 1]
    s2 = c2[w:-1] - c2[: -w - 1]
    mean = s1 / w
    sd = np.sqrt(np.maximum(s2 / w - mean * mean, 0.0))
    z = (xs[w:] - mean) / sd
    return int(np.count_nonzero(np.abs(z) > t))
