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


def test_power_and_the_minimum_detectable_effect():
    # a paired t test with 5 pairs reaches 80% power at d = 1.68 (G*Power's one-sample t table)
    assert stats.detectable(1.0, 5) == pytest.approx(1.68, abs=0.01)
    assert stats.power(stats.detectable(0.029, 5), 0.029, 5) == pytest.approx(0.8)
    assert stats.detectable(0.029, 5) == pytest.approx(0.0488, abs=1e-4)       # issue 27's 24k class IoU
    assert stats.pairs_needed(0.025, 0.029) == 13 and stats.power(0.025, 0.029, 12) < 0.8
    assert math.isnan(stats.detectable(0.0, 5)) and math.isnan(stats.detectable(1.0, 1))


def test_holm_step_down():
    assert stats.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.3, 0.9]) == pytest.approx([0.6, 0.9])
