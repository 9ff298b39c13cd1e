"""Mean ± std over seeds; TRAdam − Adam paired by seed (same seed: same initial weights and data order) with
scipy's t interval; the smallest effect 5 (or n) pairs detect at 80% power; Holm's family-wise correction.
"""
import dataclasses
import math
import warnings

from scipy import optimize, stats


@dataclasses.dataclass(frozen=True)
class Summary:
    mean: float
    std: float          # sample std (ddof 1); NaN for n = 1
    n: int


@dataclasses.dataclass(frozen=True)
class Gap:
    """b − a paired over `n` seeds, with its 95% interval and p."""
    mean: float
    ci_low: float
    ci_high: float
    n: int
    per_seed: dict = dataclasses.field(default_factory=dict)
    p: float = math.nan         # two-sided p of the t test

    @property
    def excludes_zero(self):
        return self.n >= 2 and (self.ci_low > 0 or self.ci_high < 0)

    @property
    def detectable(self):
        """The smallest true difference these n pairs find with 80% power, at their own paired SD."""
        return detectable(summarize(self.per_seed.values()).std, self.n)


def summarize(values):
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return Summary(math.nan, math.nan, 0)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(mean, std, n)


def paired(a_by_seed, b_by_seed):
    """b − a over the seeds both have ({seed: value} each)."""
    seeds = sorted(a_by_seed.keys() & b_by_seed.keys())
    a, b = [float(a_by_seed[s]) for s in seeds], [float(b_by_seed[s]) for s in seeds]
    per_seed = {s: y - x for s, x, y in zip(seeds, a, b)}
    low = high = p = math.nan
    if len(seeds) >= 2:
        with warnings.catch_warnings():      # identical values: scipy warns, and the interval has width 0
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ttest_rel(b, a)
            ci = result.confidence_interval(0.95)
        low, high, p = float(ci.low), float(ci.high), float(result.pvalue)
    return Gap(summarize(per_seed.values()).mean, low, high, len(seeds), per_seed, p)


def power(effect, sd, n, alpha=0.05):
    """Power of the two-sided paired t test (n pairs, paired SD `sd`) against a true mean difference `effect`."""
    df, nc = n - 1, effect / sd * math.sqrt(n)
    t = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(t, df, nc) + stats.nct.sf(t, df, -nc))   # both tails


def detectable(sd, n, target=0.8, alpha=0.05):
    """The minimum detectable effect: the mean difference the paired t test finds with `target` power."""
    if n < 2 or not sd > 0:
        return math.nan
    return float(optimize.brentq(lambda e: power(e, sd, n, alpha) - target, 1e-9 * sd, 40 * sd / math.sqrt(n)))


def pairs_needed(effect, sd, target=0.8, alpha=0.05):
    """The fewest pairs whose paired t test finds `effect` with `target` power at paired SD `sd`."""
    return next(n for n in range(2, 10_000) if power(effect, sd, n, alpha) >= target)


def holm(pvalues):
    """Holm's step-down adjusted p-values (same order), controlling the family-wise error rate."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted, running = [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
