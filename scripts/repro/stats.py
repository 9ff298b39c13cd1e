"""Statistics over seeds: mean ± std, and the paired difference with a Student-t 95% interval.

Seeds pair runs: Adam and TRAdam with the same seed start from the same weights and see the same
data order, so their difference per seed removes much of the seed-to-seed spread. The paired
difference d_i = b_i − a_i over n seeds has mean d̄, sample std s (ddof 1) and the interval
d̄ ± t_{0.975, n−1} · s / √n. With one seed there is no interval (NaN).

Two budgets' gaps come from separate runs, so how much a gap moved between them is an unpaired
difference: Welch's interval (welch_difference).
"""
import dataclasses
import math

from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class Summary:
    mean: float
    std: float          # sample std (ddof 1); NaN for n = 1
    n: int


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    seeds: tuple

    @property
    def excludes_zero(self):
        return self.n >= 2 and (self.ci_low > 0 or self.ci_high < 0)


def summarize(values):
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def paired_difference(a_by_seed, b_by_seed, confidence=0.95):
    """b − a over the seeds both have ({seed: value} each)."""
    seeds = tuple(sorted(set(a_by_seed) & set(b_by_seed)))
    diffs = [float(b_by_seed[s]) - float(a_by_seed[s]) for s in seeds]
    s = summarize(diffs)
    if s.n < 2:
        return PairedDifference(s.mean, s.std, s.n, math.nan, math.nan, seeds)
    half = scipy_stats.t.ppf(0.5 + confidence / 2, s.n - 1) * s.std / math.sqrt(s.n)
    return PairedDifference(s.mean, s.std, s.n, s.mean - half, s.mean + half, seeds)


def verdict(diff, spread_a, spread_b, metric, better="TRAdam", worse="Adam"):
    """One plain sentence: did `better` beat `worse` on `metric`, by how much, against the seeds'
    spread (the std over seeds of each)."""
    if diff.n == 0:
        return f"{metric}: no paired runs yet."
    pts = f"{diff.mean:+.4f}"
    spread = max(s for s in (spread_a, spread_b, 0.0) if not math.isnan(s))
    if diff.n < 2:
        return (f"{metric}: {better} − {worse} = {pts} on a single seed; no interval, "
                "so no conclusion.")
    ci = f"95% CI [{diff.ci_low:+.4f}, {diff.ci_high:+.4f}]"
    compare = (f"the std over seeds is up to {spread:.4f}" if spread > 0
               else "the seeds did not vary")
    if diff.ci_low > 0:
        head = f"{better} beat {worse}"
    elif diff.ci_high < 0:
        head = f"{better} was worse than {worse}"
    else:
        head = f"no significant difference between {better} and {worse}"
    return f"{metric}: {head}: {pts} ({ci}, n={diff.n} seeds); {compare}."


@dataclasses.dataclass(frozen=True)
class TwoSampleDifference:
    mean: float         # mean(b) − mean(a)
    ci_low: float
    ci_high: float
    df: float           # Welch–Satterthwaite degrees of freedom
    n_a: int
    n_b: int

    @property
    def excludes_zero(self):
        return not math.isnan(self.ci_low) and (self.ci_low > 0 or self.ci_high < 0)


def welch_difference(a_values, b_values, confidence=0.95):
    """mean(b) − mean(a) of two independent samples with Welch's t interval: the standard error
    √(s_a²/n_a + s_b²/n_b) and the Welch–Satterthwaite degrees of freedom. NaN interval unless
    both samples have 2 values or more."""
    a, b = summarize(a_values), summarize(b_values)
    diff = b.mean - a.mean
    if a.n < 2 or b.n < 2:
        return TwoSampleDifference(diff, math.nan, math.nan, math.nan, a.n, b.n)
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    se = math.sqrt(va + vb)
    if se == 0:
        return TwoSampleDifference(diff, diff, diff, math.inf, a.n, b.n)
    df = (va + vb) ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df)) * se
    return TwoSampleDifference(diff, diff - half, diff + half, df, a.n, b.n)
