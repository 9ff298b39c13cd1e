"""Statistics over seeds, against values computed by hand / from textbook tables."""
import math

import pytest

from scripts.repro import stats


def test_summary_uses_the_sample_std():
    s = stats.summarize([0.5, 0.7, 0.9])
    assert s.mean == pytest.approx(0.7) and s.n == 3
    assert s.std == pytest.approx(0.2)          # sqrt(((0.2)^2 + 0 + (0.2)^2) / 2)
    one = stats.summarize([0.4])
    assert one.mean == 0.4 and math.isnan(one.std)


def test_paired_difference_is_b_minus_a_by_seed_with_t_interval():
    a = {0: 0.60, 1: 0.70, 2: 0.65}
    b = {0: 0.62, 1: 0.725, 2: 0.665, 7: 0.99}  # seed 7 has no partner: left out
    diff = stats.paired_difference(a, b)
    # differences 0.02, 0.025, 0.015: mean 0.02, sample std 0.005; t(0.975, 2) = 4.302652729911275
    assert diff.seeds == (0, 1, 2) and diff.n == 3
    assert diff.mean == pytest.approx(0.02) and diff.std == pytest.approx(0.005)
    half = 4.302652729911275 * 0.005 / math.sqrt(3)
    assert diff.ci_low == pytest.approx(0.02 - half) and diff.ci_high == pytest.approx(0.02 + half)
    assert diff.excludes_zero


def test_pairing_removes_a_shared_seed_effect():
    # a large seed effect shared by both optimizers: unpaired spread is huge, paired is tiny
    a = {0: 0.30, 1: 0.60, 2: 0.90, 3: 0.45}
    b = {s: v + 0.01 + (0.001 if s % 2 else -0.001) for s, v in a.items()}
    diff = stats.paired_difference(a, b)
    assert diff.excludes_zero and diff.ci_low > 0.005
    assert stats.summarize(a.values()).std > 100 * diff.std


def test_interval_straddles_zero_when_signs_disagree():
    diff = stats.paired_difference({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.52, 1: 0.47, 2: 0.51})
    assert diff.ci_low < 0 < diff.ci_high and not diff.excludes_zero


def test_single_seed_has_no_interval():
    diff = stats.paired_difference({0: 0.5}, {0: 0.6})
    assert diff.n == 1 and diff.mean == pytest.approx(0.1)
    assert math.isnan(diff.ci_low) and math.isnan(diff.ci_high) and not diff.excludes_zero


def test_verdicts_say_who_won_by_how_much_against_the_seed_spread():
    win = stats.paired_difference({0: 0.60, 1: 0.70, 2: 0.65}, {0: 0.62, 1: 0.725, 2: 0.665})
    text = stats.verdict(win, 0.05, 0.055, "pixel acc")
    assert "TRAdam beat Adam" in text and "+0.0200" in text and "0.0550" in text
    lose = stats.paired_difference({0: 0.62, 1: 0.725, 2: 0.665}, {0: 0.60, 1: 0.70, 2: 0.65})
    assert "TRAdam was worse than Adam" in stats.verdict(lose, 0.05, 0.05, "m")
    tie = stats.paired_difference({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.52, 1: 0.47, 2: 0.51})
    assert "no significant difference" in stats.verdict(tie, 0.0, 0.02, "m")
    assert "single seed" in stats.verdict(stats.paired_difference({0: 1}, {0: 2}), math.nan, math.nan, "m")


def test_welch_difference_by_hand():
    # a: mean 2, variance 1 (n 3); b: mean 5, variance 20/3 (n 4)
    d = stats.welch_difference([1, 2, 3], [2, 4, 6, 8])
    va, vb = 1 / 3, (20 / 3) / 4
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    assert d.mean == pytest.approx(3.0) and d.df == pytest.approx(df) and df == pytest.approx(4.0755, abs=1e-4)
    half = d.ci_high - d.mean
    assert d.mean - d.ci_low == pytest.approx(half)
    # t(0.975, 4.0755) lies between the table's t(0.975, 4) = 2.776 and t(0.975, 5) = 2.571
    assert 2.571 * math.sqrt(va + vb) < half < 2.776 * math.sqrt(va + vb)
    assert not d.excludes_zero                                   # 3 ± 3.9
    assert stats.welch_difference([1, 2, 3], [12, 14, 16, 18]).excludes_zero
    one = stats.welch_difference([1.0], [2.0, 3.0])
    assert one.mean == pytest.approx(1.5) and math.isnan(one.ci_low) and not one.excludes_zero
