"""FCN-score reports: fcn_scores.json, fcn_scores.md (the paper's table form), and --compare tables.

Each segmenter's protocol (evaluate/protocols.py) is named under the table, followed by the figures
published under it; FID and KID are two more columns, filled on the results' rows. --compare groups
runs by name without a trailing `_seed<N>`: mean ± sample std with n; its ground-truth row is the
mean over the runs that scored it. The JSON's shape is in docs/evaluate.md.
"""
import json
import os
import re
import statistics

from evaluate.digests import short_name as short
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic

JSON_FILE = "fcn_scores.json"
MD_FILE = "fcn_scores.md"
COMPARE_JSON = "fcn_compare.json"
COMPARE_MD = "fcn_compare.md"
METRICS = (("pixel_acc", "Per-pixel acc."), ("class_acc", "Per-class acc."), ("mean_iou", "Class IOU"))
FID_METRICS = (("fid", "FID"), ("kid", "KID"))
GT_ROW = "Ground truth"
SEED_SUFFIX = re.compile(r"_seed\d+$")


def group_label(run):
    """The label runs are grouped by: the run name without a trailing _seed<N>."""
    return SEED_SUFFIX.sub("", run)


def _fmt(value):
    return "–" if value is None else f"{value:.3f}"


def table_row(cells):
    """A Markdown table row; a `|` or line break inside a cell (a --label, a file name) stays inside it."""
    return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"


def _header(segmenter_names, fid=False):
    cols = ["Method"] + [f"{short(s)}: {title}" for s in segmenter_names for _, title in METRICS]
    cols += [title for _, title in FID_METRICS] if fid else []
    return [table_row(cols), "|" + "---|" * len(cols)]


def _fid_cells(values):
    """FID and KID cells of a report row: {"fid", "kid", ["kid_std"]} or None."""
    if not values:
        return ["–"] * len(FID_METRICS)
    kid = values.get("kid")
    kid = "–" if kid is None else f"{kid:.4f}" + (f" ± {values['kid_std']:.4f}" if values.get("kid_std") is not None
                                                   else "")
    return ["–" if values.get("fid") is None else f"{values['fid']:.2f}", kid]


def _fid_protocol_line(values):
    p = values["protocol"]
    return (f"- **FID, KID** ({p['name']}, weights {p['weights']}): {p['description']}; KID over "
            f"{values['kid_subsets']} subsets of {values['kid_subset_size']} frames. "
            f"Comparable with: {p['comparable_with']}.")


def published_rows(by_seg):
    """[(row label, {segmenter: {metric: value}})] of the figures published under the segmenters'
    protocols (their report records' "published"), in order of appearance."""
    rows = {}
    for seg, v in by_seg.items():
        for label, values in (v.get("protocol") or {}).get("published", []):
            rows.setdefault(label, {})[seg] = values
    return list(rows.items())


def _published_lines(published, fid_published, segs, fid):
    """Table rows, in italics, of the figures published under the segmenters' protocols and FID's."""
    blank_fid = _fid_cells(None) if fid else []
    return ([table_row([f"*{name}*"] + [_fmt(by_seg.get(s, {}).get(m)) for s in segs for m, _ in METRICS] + blank_fid)
             for name, by_seg in published]
            + [table_row([f"*{name}*"] + ["–"] * (len(segs) * len(METRICS)) + _fid_cells(values))
               for name, values in fid_published])


def _protocol_line(segmenter, p):
    return (f"- **{short(segmenter)}** ({p['name']} protocol): {p['description']}. Means: {p['averaging']}. "
            f"Comparable with: {p['comparable_with']}.")


def markdown(report):
    """fcn_scores.md: the paper's table (rows method / ground truth / published figures, columns per
    segmenter), the protocol of each segmenter, and a per-class table."""
    segs = list(report["segmenters"])
    lines = [f"# FCN-scores: {report['run']}", "",
             f"{report['dataset']} {report['phase']}, {report['num_frames']} frames.",
             f"Results: `{report['results_dir']}`", ""]
    fid = report.get("fid_kid")
    lines += _header(segs, fid=bool(fid))
    rows = [(report["run"], report["segmenters"])]
    if report.get("ground_truth"):
        rows.append((GT_ROW, report["ground_truth"]))
    for name, by_seg in rows:
        cells = [name] + [_fmt(by_seg[s][m]) for s in segs for m, _ in METRICS]
        lines.append(table_row(cells + (_fid_cells(fid if by_seg is report["segmenters"] else None) if fid else [])))
    lines += _published_lines(published_rows(report["segmenters"]),
                              (fid or {}).get("protocol", {}).get("published", []), segs, fid)
    lines += ["", "Protocols:", ""] + [_protocol_line(s, v["protocol"]) for s, v in report["segmenters"].items()]
    lines += [_fid_protocol_line(fid)] if fid else []
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
    lines += [table_row(cols), "|" + "---|" * len(cols)]
    for cls in report["segmenters"][segs[0]]["per_class"]:
        cells = [cls]
        for s in segs:
            for _, by_seg in rows:
                pc = by_seg[s]["per_class"][cls]
                cells.append("absent" if pc["acc"] is None else f"{pc['acc']:.3f} / {pc['iou']:.3f}")
        lines.append(table_row(cells))
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


def _summary(runs, key, segs):
    """{"runs", "scores": {segmenter: {metric: mean ± std}}} of the runs' `key` rows."""
    return {"runs": [r["run"] for r in runs], "scores": {
        s: {m: _mean_std([r[key][s][m] for r in runs if s in r[key]]) for m, _ in METRICS} for s in segs}}


def compare(reports):
    """Group runs by `group_label`; mean ± std per group, segmenter and metric."""
    segs = list(dict.fromkeys(s for r in reports for s in r["segmenters"]))
    groups = {}
    for r in reports:
        groups.setdefault(group_label(r["run"]), []).append(r)
    rows = {label: _summary(runs, "segmenters", segs) for label, runs in groups.items()}
    has_fid = any(r.get("fid_kid") for r in reports)
    if has_fid:
        for label, runs in groups.items():
            rows[label]["fid_kid"] = {m: _mean_std([r["fid_kid"][m] for r in runs if r.get("fid_kid")])
                                      for m, _ in FID_METRICS}
    gt_runs = [r for r in reports if r.get("ground_truth")]
    if gt_runs:
        rows[GT_ROW] = _summary(gt_runs, "ground_truth", segs)
    datasets = sorted({f"{r['dataset']} {r['phase']}" for r in reports})
    published = published_rows({s: v for r in reports for s, v in r["segmenters"].items()})
    table = {"segmenters": segs, "datasets": datasets, "rows": rows, "published": published}
    if has_fid:
        fid_published = {}
        for r in reports:
            for name, values in (r.get("fid_kid") or {}).get("protocol", {}).get("published", []):
                fid_published.setdefault(name, values)
        table["fid_published"] = list(fid_published.items())
    return table


def _mean_std_cell(v, digits):
    if v is None:
        return "–"
    return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}" if v["n"] > 1 else f"{v['mean']:.{digits}f}"


def compare_markdown(table):
    lines = [f"# FCN-scores compared ({'; '.join(table['datasets'])})", "",
             "Mean ± sample std over the runs of each row (runs grouped by name without _seed<N>).", ""]
    fid = any("fid_kid" in row for row in table["rows"].values())
    lines += _header(table["segmenters"], fid=fid)
    for label, row in table["rows"].items():
        cells = [f"{label} (n={len(row['runs'])})" if label != GT_ROW else label]
        cells += [_mean_std_cell(row["scores"][s][m], 3) for s in table["segmenters"] for m, _ in METRICS]
        if fid:
            cells += [_mean_std_cell((row.get("fid_kid") or {}).get(m), digits)
                      for (m, _), digits in zip(FID_METRICS, (2, 4))]
        lines.append(table_row(cells))
    lines += _published_lines(table.get("published", []), table.get("fid_published", []), table["segmenters"], fid)
    lines += ["", "Runs: " + "; ".join(f"{k}: {', '.join(v['runs'])}" for k, v in table["rows"].items())]
    return "\n".join(lines) + "\n"
