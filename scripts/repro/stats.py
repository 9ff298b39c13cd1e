"""Mean ± std over seeds; TRAdam − Adam paired by seed (same seed: same initial weights and data order) with
scipy's t interval, and Welch's interval between separate budgets' gaps.
"""
import dataclasses
import math
import warnings

from scipy import stats


@dataclasses.dataclass(frozen=True)
class Summary:
    mean: float
    std: float          # sample std (ddof 1); NaN for n = 1
    n: int


@dataclasses.dataclass(frozen=True)
class Gap:
    """b − a with its 95% interval: paired (`n` pairs) or Welch's (`n` the smaller sample)."""
    mean: float
    ci_low: float
    ci_high: float
    n: int
    per_seed: dict = dataclasses.field(default_factory=dict)

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


def _interval(test, *samples):
    with warnings.catch_warnings():      # identical values: scipy warns, and the interval has width 0
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = test(*samples).confidence_interval(0.95)
    return float(ci.low), float(ci.high)


def paired(a_by_seed, b_by_seed):
    """b − a over the seeds both have ({seed: value} each)."""
    seeds = sorted(a_by_seed.keys() & b_by_seed.keys())
    a, b = [float(a_by_seed[s]) for s in seeds], [float(b_by_seed[s]) for s in seeds]
    per_seed = {s: y - x for s, x, y in zip(seeds, a, b)}
    low, high = _interval(stats.ttest_rel, b, a) if len(seeds) >= 2 else (math.nan, math.nan)
    return Gap(summarize(per_seed.values()).mean, low, high, len(seeds), per_seed)


def welch(a_values, b_values):
    """mean(b) − mean(a) of two independent samples."""
    a, b = [float(v) for v in a_values], [float(v) for v in b_values]
    n = min(len(a), len(b))
    low, high = _interval(lambda x, y: stats.ttest_ind(x, y, equal_var=False), b, a) if n >= 2 else (math.nan, math.nan)
    return Gap(summarize(b).mean - summarize(a).mean, low, high, n)
