"""Plots of the report as small PNGs (matplotlib, Agg backend: no display needed).

    loss_plot    G_GAN, G_L1, D_real, D_fake against epoch: each run thin, each optimizer's mean bold
    curve_plot   an FCN-score metric against epoch, mean over seeds with the min–max band
    gap_plot     TRAdam − Adam (paired by seed) against generator steps with its 95% band, per
                 metric; other budgets' gaps as points with error bars
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pix2pix_tr import atomic  # noqa: E402

from .collect import epoch_positions  # noqa: E402

LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")
COLORS = {"adam": "tab:blue", "tradam": "tab:orange"}


def _smooth(values, window):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def _save(fig, path):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def loss_plot(results, path, total_epochs, title):
    """One panel per loss: each run thin (smoothed), the mean over an optimizer's seeds bold.
    False if nothing was logged."""
    runs = [r for r in results if r.losses]
    if not runs:
        return False
    fig, axes = plt.subplots(1, len(LOSSES), figsize=(14, 3.2))
    for ax, loss in zip(axes, LOSSES):
        by_opt = {}
        for r in runs:
            records = [rec for rec in r.losses if loss in rec]
            if not records:
                continue
            x = epoch_positions(records, total_epochs)
            y = _smooth([rec[loss] for rec in records], max(1, len(records) // 10))
            color = COLORS.get(r.cell.variant.optimizer, "gray")
            ax.plot(x, y, color=color, lw=0.6, alpha=0.35)
            by_opt.setdefault(r.cell.variant.optimizer, []).append((x, y))
        for opt, curves in by_opt.items():
            n = min(len(y) for _, y in curves)       # same print schedule: the points line up
            mean = [sum(y[i] for _, y in curves) / len(curves) for i in range(n)]
            ax.plot(curves[0][0][:n], mean, color=COLORS.get(opt, "gray"), lw=1.8,
                    label=f"{opt} (mean of {len(curves)})")
        ax.set_title(loss)
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return True


def curve_plot(results, path, segmenter, metrics, title):
    """Each metric against epoch per optimizer: mean over seeds, min–max band. False if empty."""
    by_opt = {}
    for r in results:
        points = {e: s[segmenter] for e, s in r.curve.items() if segmenter in s}
        if points:
            by_opt.setdefault(r.cell.variant.optimizer, []).append(points)
    if not by_opt:
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2))
    axes = axes if len(metrics) > 1 else [axes]
    for ax, (key, label) in zip(axes, metrics):
        for opt, runs in by_opt.items():
            epochs = sorted(set.intersection(*(set(p) for p in runs)))
            vals = [[p[e][key] for p in runs] for e in epochs]
            mean = [sum(v) / len(v) for v in vals]
            color = COLORS.get(opt, "gray")
            ax.plot(epochs, mean, marker="o", color=color, label=f"{opt} (n={len(runs)})")
            ax.fill_between(epochs, [min(v) for v in vals], [max(v) for v in vals], color=color,
                            alpha=0.2)
        ax.set_title(label)
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return True


def gap_plot(series, path, metrics, title, decay_start=None, xlabel="generator steps"):
    """One panel per metric: each series' TRAdam − Adam against x with its 95% interval.

    `series`: [(label, color, kind, points)], kind "line" (mean joined, interval as a band) or
    "points" (error bars), points [(x, budgets.Gap)]. A dotted line marks `decay_start` (where
    the main series' linear lr decay begins). False if no series has a point."""
    if not any(points for *_, points in series):
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4))
    axes = axes if len(metrics) > 1 else [axes]
    for ax, (key, label) in zip(axes, metrics):
        ax.axhline(0.0, color="black", lw=0.8)
        if decay_start:
            ax.axvline(decay_start, color="gray", ls=":", lw=1.0, label="lr decay starts")
        for name, color, kind, points in series:
            pts = sorted((x, g[key]) for x, g in points if key in g and g[key].n)
            if not pts:
                continue
            xs, gaps = [x for x, _ in pts], [g for _, g in pts]
            means = [g.mean for g in gaps]
            lows = [g.ci_low if g.n >= 2 else g.mean for g in gaps]
            highs = [g.ci_high if g.n >= 2 else g.mean for g in gaps]
            n = max(g.n for g in gaps)
            if kind == "line":
                ax.plot(xs, means, marker="o", color=color, label=f"{name} (n={n})")
                ax.fill_between(xs, lows, highs, color=color, alpha=0.2)
            else:
                ax.errorbar(xs, means, yerr=[[m - lo for m, lo in zip(means, lows)],
                                             [hi - m for m, hi in zip(means, highs)]],
                            fmt="s", color=color, capsize=4, label=f"{name} (n={n})")
        ax.set_title(f"{label}: TRAdam − Adam")
        ax.set_xlabel(xlabel)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return True
