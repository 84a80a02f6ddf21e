"""Confidence intervals and paired significance tests over per-query scores."""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
_Z_95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)
PERMUTATIONS = 10_000
ALPHA = 0.05


def jackknife_interval(values: np.ndarray, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """95 % jackknife interval of the mean, as the official DCASE scorer computes it, clipped to
    `bounds` (a metric's range: an interval never claims a mAP below 0 or above 1).

    `astropy.stats.jackknife_stats(values, np.mean, 0.95)` returns
    estimate - bias -/+ z * std_err; the leave-one-out means have a closed form, so this is
    O(n) and needs no astropy. Inside the range the bounds are the official ones, digit for digit.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n < 2:
        mean = float(values.mean()) if n else float("nan")
        return mean, mean
    theta = values.mean()
    leave_one_out = (values.sum() - values) / (n - 1)
    mean_loo = leave_one_out.mean()
    bias = (n - 1) * (mean_loo - theta)
    std_err = np.sqrt((n - 1) * np.mean((leave_one_out - mean_loo) ** 2))
    estimate = theta - bias
    low, high = bounds
    return (float(min(max(estimate - _Z_95 * std_err, low), high)),
            float(min(max(estimate + _Z_95 * std_err, low), high)))


def paired_randomization_test(a: np.ndarray, b: np.ndarray, *, permutations: int = PERMUTATIONS,
                              seed: int = 0) -> float:
    """Two-sided p-value that systems a and b have the same mean per-query score.

    Fisher's paired randomisation (sign-flip) test, the usual choice in IR evaluation
    (Smucker et al., CIKM 2007). A fixed seed makes the leaderboard reproducible to the byte.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:  # checked before subtracting: (1,) would broadcast
        raise ValueError("paired scores must be 1-d arrays of the same length")
    diff = a - b
    observed = abs(diff.mean())
    if not np.any(diff):
        return 1.0
    rng = np.random.default_rng(seed)
    at_least = 0
    chunk = max(1, min(permutations, 2_000_000 // max(len(diff), 1)))
    done = 0
    while done < permutations:
        size = min(chunk, permutations - done)
        signs = rng.integers(0, 2, size=(size, len(diff)), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diff) / len(diff)
        at_least += int(np.count_nonzero(means >= observed - 1e-12))
        done += size
    return (at_least + 1) / (permutations + 1)
