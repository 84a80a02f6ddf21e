"""Jackknife intervals and the paired randomisation test."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import Z_95, brute_force_jackknife
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark import stats


def test_z_is_the_normal_quantile():
    from statistics import NormalDist

    assert stats._Z_95 == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=60))
def test_jackknife_equals_brute_force(values):
    """Inside the metric's range [0, 1] the bounds are astropy's; outside it, the range's bound."""
    values = np.array(values)
    low, high = stats.jackknife_interval(values)
    expected = brute_force_jackknife(values)
    assert low == pytest.approx(min(max(expected[0], 0.0), 1.0), abs=1e-12)
    assert high == pytest.approx(min(max(expected[1], 0.0), 1.0), abs=1e-12)
    assert low <= values.mean() + 1e-12 and values.mean() - 1e-12 <= high
    unclipped = stats.jackknife_interval(values, bounds=(-np.inf, np.inf))
    assert unclipped == pytest.approx(expected, abs=1e-12)


def test_jackknife_of_binary_scores_is_the_normal_interval():
    # for the mean, the jackknife standard error is the sample standard error
    values = np.random.default_rng(0).integers(0, 2, 500).astype(float)
    low, high = stats.jackknife_interval(values)
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert (low, high) == pytest.approx((values.mean() - Z_95 * se, values.mean() + Z_95 * se), abs=1e-12)


def test_jackknife_degenerate_inputs():
    assert stats.jackknife_interval(np.full(10, 0.25)) == pytest.approx((0.25, 0.25))
    assert stats.jackknife_interval(np.array([0.7])) == (0.7, 0.7)


def test_identical_systems_are_not_different():
    a = np.random.default_rng(1).random(200)
    assert stats.paired_randomization_test(a, a.copy()) == 1.0


def test_clearly_different_systems_have_the_smallest_p():
    rng = np.random.default_rng(2)
    a = rng.random(300)
    p = stats.paired_randomization_test(a + 0.3, a, permutations=2000)
    assert p == pytest.approx(1 / 2001)


def test_p_value_is_symmetric_deterministic_and_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.random(50), rng.random(50)
    p = stats.paired_randomization_test(a, b)
    assert p == stats.paired_randomization_test(b, a)
    assert p == stats.paired_randomization_test(a, b)
    assert 0 < p <= 1


def test_p_value_agrees_with_the_exact_sign_flip_distribution():
    rng = np.random.default_rng(4)
    a = rng.random(12)
    b = a - rng.normal(0.08, 0.1, 12)
    diff = a - b
    observed = abs(diff.mean())
    flips = np.array(list(itertools.product((-1, 1), repeat=len(diff))))
    exact = np.mean(np.abs(flips @ diff) / len(diff) >= observed - 1e-12)
    p = stats.paired_randomization_test(a, b, permutations=20_000)
    assert 0.001 < exact < 0.5
    assert p == pytest.approx(exact, abs=0.01)


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="same length"):
        stats.paired_randomization_test(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="same length"):  # would broadcast
        stats.paired_randomization_test(np.zeros(1), np.ones(4))
