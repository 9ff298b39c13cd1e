"""FCN-score reports: fcn_scores.json, fcn_scores.md (the paper's table form), and --compare tables.

fcn_scores.json:
    {"run": "<name>", "dataset": ..., "phase": ..., "num_frames": N, "results_dir": ...,
     "segmenters": {<segmenter>: {"eval_size": [H, W], "pixel_acc", "class_acc", "mean_iou",
                                  "per_class": {<class>: {"acc", "iou", "pixels"}}, "absent": [...],
                                  "averaging": ..., "protocol": {"name", "description",
                                  "comparable_with", "averaging", "input_size", ["published"]}}},
     "ground_truth": {<segmenter>: {...same...}}            (with --gt)}

Each segmenter's protocol (evaluate/protocols.py) is named in the report; where figures were published
under it (pix2pix's FCN-8s), those rows follow the table, labelled as published.

Comparing runs: each run is labelled by its run name with a trailing `_seed<N>` removed
(`adam_seed0`, `adam_seed1` -> `adam`); runs with one label become one row, mean ± sample std
(n-1) over them, with n shown. The ground-truth row is the mean over runs that scored it.
"""
import json
import os
import re
import statistics

from pix2pix_tr import atomic
from pix2pix_tr.errors import UserError

JSON_FILE = "fcn_scores.json"
MD_FILE = "fcn_scores.md"
COMPARE_JSON = "fcn_compare.json"
COMPARE_MD = "fcn_compare.md"
METRICS = (("pixel_acc", "Per-pixel acc."), ("class_acc", "Per-class acc."), ("mean_iou", "Class IOU"))
GT_ROW = "Ground truth"
SEED_SUFFIX = re.compile(r"_seed\d+$")


def group_label(run):
    """The label runs are grouped by: the run name without a trailing _seed<N>."""
    return SEED_SUFFIX.sub("", run)


def short(segmenter):
    return os.path.basename(os.path.normpath(segmenter))


def _fmt(value):
    return "–" if value is None else f"{value:.3f}"


def _header(segmenter_names, first="Method"):
    cols = [first] + [f"{short(s)}: {title}" for s in segmenter_names for _, title in METRICS]
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]


def published_rows(by_seg):
    """[(row label, {segmenter: {metric: value}})] of the figures published under the segmenters'
    protocols (their report records' "published"), in order of appearance."""
    rows = {}
    for seg, v in by_seg.items():
        for label, values in (v.get("protocol") or {}).get("published", []):
            rows.setdefault(label, {})[seg] = values
    return list(rows.items())


def _protocol_lines(by_seg):
    lines = []
    for s, v in by_seg.items():
        p = v.get("protocol")
        if p:
            lines.append(f"- **{short(s)}** ({p['name']} protocol): {p['description']}. Means: {p['averaging']}. "
                         f"Comparable with: {p['comparable_with']}.")
        else:
            lines.append(f"- **{short(s)}**: at {v['eval_size'][0]}x{v['eval_size'][1]}.")
    return lines


def markdown(report):
    """fcn_scores.md: the paper's table (rows method / ground truth / published figures, columns per
    segmenter), the protocol of each segmenter, and a per-class table."""
    segs = list(report["segmenters"])
    lines = [f"# FCN-scores: {report['run']}", "",
             f"{report['dataset']} {report['phase']}, {report['num_frames']} frames.",
             f"Results: `{report['results_dir']}`", ""]
    lines += _header(segs)
    rows = [(report["run"], report["segmenters"])]
    if report.get("ground_truth"):
        rows.append((GT_ROW, report["ground_truth"]))
    for name, by_seg in rows:
        lines.append("| " + " | ".join([name] + [_fmt(by_seg[s][m]) for s in segs for m, _ in METRICS]) + " |")
    for name, by_seg in published_rows(report["segmenters"]):
        lines.append("| " + " | ".join([f"*{name}*"] + [_fmt(by_seg.get(s, {}).get(m)) for s in segs
                                                         for m, _ in METRICS]) + " |")
    lines += ["", "Protocols:", ""] + _protocol_lines(report["segmenters"])
    absent = sorted({c for v in report["segmenters"].values() for c in v["absent"]})
    if absent:
        counted = [short(s) for s, v in report["segmenters"].items() if v.get("averaging") == "pix2pix"]
        how = "left out of the means"
        if counted:
            how = f"counted as 0 in the class means of {', '.join(counted)}, as pix2pix's protocol does" + (
                ", left out of the others'" if len(counted) < len(segs) else "")
        lines += ["", f"Absent from the labels ({how}): {', '.join(absent)}."]
    lines += ["", "## Per class (accuracy / IoU)", ""]
    cols = ["Class"] + [f"{short(s)}: {name}" for s in segs for name, _ in rows]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for cls in report["segmenters"][segs[0]]["per_class"]:
        cells = [cls]
        for s in segs:
            for _, by_seg in rows:
                pc = by_seg[s]["per_class"][cls]
                cells.append("absent" if pc["acc"] is None else f"{pc['acc']:.3f} / {pc['iou']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(report, output_dir):
    """Write fcn_scores.json and fcn_scores.md atomically; returns their paths."""
    paths = os.path.join(output_dir, JSON_FILE), os.path.join(output_dir, MD_FILE)
    atomic.write_json(paths[0], report)
    atomic.write_text(paths[1], markdown(report))
    return paths


def read(path):
    """A run's fcn_scores.json, given the file or the folder holding it."""
    file = os.path.join(path, JSON_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise UserError(f"--compare {path}: no {JSON_FILE} there (run evaluate/fcn_score.py on it first)")
    try:
        with open(file, encoding="utf-8") as f:
            report = json.load(f)
        report["segmenters"], report["run"]   # noqa: B018 - the keys every report has
    except (ValueError, KeyError) as err:
        raise UserError(f"{file} is not an fcn_scores.json ({type(err).__name__}: {err})") from None
    return report


def _mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values)}


def compare(reports):
    """Group runs by `group_label`; mean ± std per group, segmenter and metric."""
    segs = list(dict.fromkeys(s for r in reports for s in r["segmenters"]))
    groups = {}
    for r in reports:
        groups.setdefault(group_label(r["run"]), []).append(r)
    rows = {}
    for label, runs in groups.items():
        rows[label] = {"runs": [r["run"] for r in runs], "scores": {
            s: {m: _mean_std([r["segmenters"][s][m] for r in runs if s in r["segmenters"]]) for m, _ in METRICS}
            for s in segs}}
    gt_runs = [r for r in reports if r.get("ground_truth")]
    if gt_runs:
        rows[GT_ROW] = {"runs": [r["run"] for r in gt_runs], "scores": {
            s: {m: _mean_std([r["ground_truth"][s][m] for r in gt_runs if s in r["ground_truth"]])
                for m, _ in METRICS} for s in segs}}
    datasets = sorted({f"{r['dataset']} {r['phase']}" for r in reports})
    published = published_rows({s: v for r in reports for s, v in r["segmenters"].items()})
    return {"segmenters": segs, "datasets": datasets, "rows": rows, "published": published}


def compare_markdown(table):
    lines = [f"# FCN-scores compared ({'; '.join(table['datasets'])})", "",
             "Mean ± sample std over the runs of each row (runs grouped by name without _seed<N>).", ""]
    lines += _header(table["segmenters"])
    for label, row in table["rows"].items():
        cells = [f"{label} (n={len(row['runs'])})" if label != GT_ROW else label]
        for s in table["segmenters"]:
            for m, _ in METRICS:
                v = row["scores"][s][m]
                cells.append("–" if v is None else f"{v['mean']:.3f} ± {v['std']:.3f}" if v["n"] > 1
                             else f"{v['mean']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    for name, by_seg in table.get("published", []):
        lines.append("| " + " | ".join([f"*{name}*"] + [_fmt(by_seg.get(s, {}).get(m)) for s in table["segmenters"]
                                                         for m, _ in METRICS]) + " |")
    lines += ["", "Runs: " + "; ".join(f"{k}: {', '.join(v['runs'])}" for k, v in table["rows"].items())]
    return "\n".join(lines) + "\n"
