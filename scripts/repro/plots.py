"""The report's PNGs (matplotlib Agg and PIL: no display needed)."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from pix2pix_tr.run import atomic  # noqa: E402

from .collect import LOSS_KEYS, read_json  # noqa: E402

COLORS = {"adam": "tab:blue", "tradam": "tab:orange"}
SAMPLES_PNG, SAMPLES_JSON = "samples.png", "samples.json"
SHORT_NAMES = {"adam": "Adam", "tradam": "TRAdam"}     # ASCII: PIL's default font draws the titles


def _smooth(values, window):
    return [sum(values[max(0, i + 1 - window):i + 1]) / len(values[max(0, i + 1 - window):i + 1])
            for i in range(len(values))]


def _panels(titles, width, height, xlabel):
    fig, axes = plt.subplots(1, len(titles), figsize=(width * len(titles), height), squeeze=False)
    for ax, title in zip(axes[0], titles):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
    return fig, list(axes[0])


def _save(fig, axes, title, path, legend_size):
    axes[0].legend(fontsize=legend_size)
    fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return True


def loss_plot(results, path, title):
    """One panel per loss: each run thin (smoothed), the mean over an optimizer's seeds bold."""
    runs = [r for r in results if r.losses]
    if not runs:
        return False
    fig, axes = _panels(LOSS_KEYS, 3.5, 3.2, "epoch")
    for ax, loss in zip(axes, LOSS_KEYS):
        by_opt = {}
        for r in runs:
            records = [rec for rec in r.losses if loss in rec]
            if records:
                x = [rec["epoch_pos"] for rec in records]
                y = _smooth([rec[loss] for rec in records], max(1, len(records) // 10))
                ax.plot(x, y, color=COLORS.get(r.cell.variant.optimizer, "gray"), lw=0.6, alpha=0.35)
                by_opt.setdefault(r.cell.variant.optimizer, []).append((x, y))
        for opt, curves in by_opt.items():
            n = min(len(y) for _, y in curves)       # same print schedule: the points line up
            ax.plot(curves[0][0][:n], [sum(y[i] for _, y in curves) / len(curves) for i in range(n)],
                    color=COLORS.get(opt, "gray"), lw=1.8, label=f"{opt} (mean of {len(curves)})")
    return _save(fig, axes, title, path, 7)


def curve_plot(results, path, segmenter, metrics, title):
    """Each metric against epoch per optimizer: mean over seeds, min–max band. False if empty."""
    by_opt = {}
    for r in results:
        points = {e: s[segmenter] for e, s in r.curve.items() if segmenter in s}
        if points:
            by_opt.setdefault(r.cell.variant.optimizer, []).append(points)
    if not by_opt:
        return False
    fig, axes = _panels([name for _, name in metrics], 4.5, 3.2, "epoch")
    for ax, (key, _) in zip(axes, metrics):
        for opt, runs in by_opt.items():
            epochs = sorted(set.intersection(*(set(p) for p in runs)))
            values = [[p[e][key] for p in runs] for e in epochs]
            color = COLORS.get(opt, "gray")
            ax.plot(epochs, [sum(v) / len(v) for v in values], marker="o", color=color, label=f"{opt} (n={len(runs)})")
            ax.fill_between(epochs, [min(v) for v in values], [max(v) for v in values], color=color, alpha=0.2)
    return _save(fig, axes, title, path, 8)


def gap_plot(series, path, metrics, title, decay_start=None, xlabel="generator steps"):
    """One panel per metric: each series' TRAdam − Adam against x, joined, with its 95% interval as a band."""
    if not any(points for *_, points in series):
        return False
    fig, axes = _panels([f"{name}: TRAdam − Adam" for _, name in metrics], 4.5, 3.4, xlabel)
    for ax, (key, _) in zip(axes, metrics):
        ax.axhline(0.0, color="black", lw=0.8)
        if decay_start:
            ax.axvline(decay_start, color="gray", ls=":", lw=1.0, label="lr decay starts")
        for name, color, points in series:
            gaps = sorted(((x, g[key]) for x, g in points if key in g and g[key].n), key=lambda p: p[0])
            if gaps:
                xs = [x for x, _ in gaps]
                ax.plot(xs, [g.mean for _, g in gaps], marker="o", color=color,
                        label=f"{name} (n={max(g.n for _, g in gaps)})")
                ax.fill_between(xs, [g.ci_low if g.n >= 2 else g.mean for _, g in gaps],
                                [g.ci_high if g.n >= 2 else g.mean for _, g in gaps], color=color, alpha=0.2)
    return _save(fig, axes, title, path, 7)


def _frame_ids(images_dir, limit):
    names = os.listdir(images_dir) if os.path.isdir(images_dir) else []
    return sorted(f[: -len("_fake_B.png")] for f in names if f.endswith("_fake_B.png"))[:limit]


def samples(pair, paths, report_dir, identity, limit=4, tile=128):
    """Draw the sample grid of `pair` from the work dir's images ('drawn'), else reuse the earlier grid of the same
    stored cells ('earlier'), else None."""
    dirs = [os.path.join(paths.epoch_dir(c, "latest"), "images") for c in pair]
    frames = _frame_ids(dirs[0], limit)
    if frames and all(_frame_ids(d, limit) == frames for d in dirs):
        columns = [("label map", dirs[0], "_real_A.png")]
        columns += [(SHORT_NAMES[c.variant.optimizer], d, "_fake_B.png") for c, d in zip(pair, dirs)]
        columns.append(("real photo", dirs[0], "_real_B.png"))
        header = 16
        grid = Image.new("RGB", (tile * len(columns), header + tile * len(frames)), (128, 128, 128))
        draw = ImageDraw.Draw(grid)
        for c, (title, folder, suffix) in enumerate(columns):
            draw.rectangle([c * tile, 0, (c + 1) * tile - 1, header - 1], fill=(255, 255, 255))
            draw.text((c * tile + 3, 2), title, fill=(0, 0, 0))
            for r, frame in enumerate(frames):
                src = os.path.join(folder, f"{frame}{suffix}")
                if os.path.exists(src):            # a missing image is left grey
                    with Image.open(src) as im:
                        grid.paste(im.convert("RGB").resize((tile, tile), Image.BILINEAR),
                                   (c * tile, header + r * tile))
        atomic.save_image(os.path.join(report_dir, SAMPLES_PNG), grid, optimize=True)
        atomic.write_json(os.path.join(report_dir, SAMPLES_JSON), {"cells": identity, "frames": frames})
        return "drawn", frames
    try:
        earlier = read_json(os.path.join(report_dir, SAMPLES_JSON))
    except (OSError, ValueError):
        return None
    if (earlier.get("cells") == identity and all(identity.values())
            and os.path.exists(os.path.join(report_dir, SAMPLES_PNG))):
        return "earlier", earlier.get("frames", [])
    return None
