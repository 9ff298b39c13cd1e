"""Statistics over seeds (scripts/repro/stats.py), against values computed by hand and t tables:
which seeds pair, the sign b − a, and when there is no interval."""
import math

import pytest

from scripts.repro import stats

T_975_2 = 4.302652729911275       # t(0.975, 2 degrees of freedom)


def test_summary_uses_the_sample_std():
    s = stats.summarize([0.5, 0.7, 0.9])
    assert (s.mean, s.n) == (pytest.approx(0.7), 3) and s.std == pytest.approx(0.2)
    assert math.isnan(stats.summarize([0.4]).std)


def test_paired_difference_is_b_minus_a_by_seed_with_t_interval():
    a = {0: 0.60, 1: 0.70, 2: 0.65}
    b = {0: 0.62, 1: 0.725, 2: 0.665, 7: 0.99}  # seed 7 has no partner: left out
    diff = stats.paired(a, b)
    # differences 0.02, 0.025, 0.015: mean 0.02, sample std 0.005
    assert diff.n == 3 and diff.per_seed == pytest.approx({0: 0.02, 1: 0.025, 2: 0.015})
    half = T_975_2 * 0.005 / math.sqrt(3)
    assert (diff.mean, diff.ci_low, diff.ci_high) == pytest.approx((0.02, 0.02 - half, 0.02 + half))
    assert diff.excludes_zero and stats.paired(b, a).ci_high == pytest.approx(-0.02 + half)
    same = stats.paired({0: 0.5, 1: 0.6}, {0: 0.6, 1: 0.7})       # no spread: a zero-width interval
    assert (same.ci_low, same.ci_high) == pytest.approx((0.1, 0.1))
    one = stats.paired({0: 0.5}, {0: 0.6})
    assert one.n == 1 and math.isnan(one.ci_low) and not one.excludes_zero


def test_welch_difference_by_hand():
    # a: mean 2, variance 1 (n 3); b: mean 5, variance 20/3 (n 4)
    d = stats.welch([1, 2, 3], [2, 4, 6, 8])
    se = math.sqrt(1 / 3 + (20 / 3) / 4)
    half = d.ci_high - d.mean
    assert d.mean == pytest.approx(3.0) and d.mean - d.ci_low == pytest.approx(half)
    # Welch–Satterthwaite: 4.08 degrees of freedom, between the table's t(0.975, 4) and t(0.975, 5)
    assert 2.571 * se < half < 2.776 * se and not d.excludes_zero
    assert stats.welch([1, 2, 3], [12, 14, 16, 18]).excludes_zero
    assert math.isnan(stats.welch([1.0], [2.0, 3.0]).ci_low)
