"""Finished cells' small results (cell.json, fcn_scores_<epoch>.json, losses.json) in a folder git tracks, so
a grid continues on another machine and its report rebuilds from a fresh clone. A stored cell is done; its
commands must match today's up to paths, --device and --gt, and one store has one judge (segmenter weights).
"""
import contextlib
import dataclasses
import datetime
import json
import os
import shlex
import shutil
import tempfile
import time

from evaluate import digests
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic

from . import collect, commands

CELL_FILE = "cell.json"
LOSSES_FILE = "losses.json"
SCORES_FILE = "fcn_scores_{epoch}.json"
STALE_SECONDS = 3600          # a temporary folder older than this was left by a killed writer


class Store:

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def cell_dir(self, name):
        return os.path.join(self.root, name)

    def has(self, name):
        return os.path.isfile(os.path.join(self.cell_dir(name), CELL_FILE))

    def names(self):
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root) if not n.startswith(".") and self.has(n))

    def record(self, name):
        return collect.read_json(os.path.join(self.cell_dir(name), CELL_FILE))

    def scores_path(self, name, epoch="latest"):
        return os.path.join(self.cell_dir(name), SCORES_FILE.format(epoch=epoch))

    def losses(self, name):
        path = os.path.join(self.cell_dir(name), LOSSES_FILE)
        if not os.path.exists(path):
            return []
        data = collect.read_json(path)
        return [dict(zip(data["columns"], row)) for row in data["rows"]]

    def check_judges(self, fingerprints, locations=None, where=None):
        """Raise if stored cells were judged by other segmenter weights than `fingerprints`."""
        for label, now in fingerprints.items():
            others = [n for n in self.names() if (self.record(n).get("segmenters") or {}).get(label, now) != now]
            if others:
                then = self.record(others[0])["segmenters"][label]
                if where:
                    than, fix = f"{where} were judged by", "delete those cells (or that one) to run them again"
                else:
                    than = f"{(locations or {}).get(label, label)} holds now"
                    fix = "put those weights back there, or delete those cells' folders to run them again"
                raise UserError(f"{len(others)} stored cell(s) in {self.root} (e.g. {others[0]}, see its "
                                f"{CELL_FILE}) were judged by other weights of {label} ({_short(then)}) "
                                f"than {than} ({_short(now)}): {fix}, or pass another --results_store")

    def write(self, name, files):
        """Write the cell's folder atomically: a reader sees the old one or the new one."""
        os.makedirs(self.root, exist_ok=True)
        for entry in os.listdir(self.root):     # killed writers' folders (old ones: never a live writer's)
            path = os.path.join(self.root, entry)
            with contextlib.suppress(OSError):
                if entry.startswith(".") and atomic.TEMP_MARK in entry and \
                        time.time() - os.path.getmtime(path) > STALE_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
        tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=atomic.TEMP_MARK, dir=self.root)
        try:
            os.chmod(tmp, 0o777 & ~atomic._UMASK)
            for file_name, text in files.items():
                with open(os.path.join(tmp, file_name), "w", encoding="utf-8") as f:
                    f.write(text)
            atomic.replace_dir(tmp, self.cell_dir(name))
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise atomic.write_error(self.cell_dir(name), err) from None


_IGNORED_WITH_VALUE = ("--device",)   # where it ran, not what it computes
_IGNORED = ("--gt",)                  # adds the real photos' row; the synthesized scores are the same


def settings(command_lines):
    """{stage: its words without the flags that do not change a cell's result}."""
    out = {}
    for stage, line in command_lines.items():
        words = shlex.split(line)
        out[stage] = [w for i, w in enumerate(words) if w not in _IGNORED + _IGNORED_WITH_VALUE
                      and not (i and words[i - 1] in _IGNORED_WITH_VALUE)]
    return out


def check_settings(path, record, fix):
    old = settings(collect.read_json(path).get("commands", {}))
    new = settings(record["commands"])
    if old != new:
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise UserError(f"cell {record['cell']} was made with other settings ({', '.join(changed)} differ, "
                        f"see {path}); {fix}")


def _short(fingerprint):
    return f"SHA-256 {fingerprint[:12]}…" if len(fingerprint) == 64 else fingerprint


def segmenter_fingerprints(scale, paths):
    """{segmenter label: weights fingerprint} of the scale's segmenters as made now."""
    prints = {digests.short_name(seg): digests.weights_fingerprint(seg)
              for seg in commands.segmenter_paths(scale, paths)}
    return {label: f for label, f in prints.items() if f is not None}


def recorded_fingerprints(scores_path):
    """{segmenter label: weights fingerprint} an fcn_scores.json recorded ({} if none)."""
    try:
        report = collect.read_json(scores_path)
    except (OSError, ValueError):
        return {}
    return {digests.short_name(name): s["weights_fingerprint"] for name, s in report.get("segmenters", {}).items()
            if isinstance(s, dict) and s.get("weights_fingerprint")}


def _losses_text(records):
    """losses.json: columns and one row per line (small diffs in git)."""
    columns = sorted({k for r in records for k in r}, key=lambda k: (k != "epoch_pos", k != "n", k))
    rows = [json.dumps([float(f"{r[c]:.5g}") if c in r else None for c in columns]) for r in records]
    return ('{\n  "columns": ' + json.dumps(columns) + ',\n  "rows": [\n    ' + ",\n    ".join(rows) +
            "\n  ]\n}\n")


def cell_record(cell, scale, paths, stages):
    return {"cell": cell.name, "seed": cell.seed, "variant": dataclasses.asdict(cell.variant),
            "label": cell.variant.label, "scale": scale.name,
            "epochs": scale.total_epochs, "steps": scale.steps(batch_size=cell.variant.batch_size),
            "commands": {s.name: commands.shell_line(s.argv, paths.work_dir) for s in stages}}


def cell_files(cell, scale, paths, stages, extra):
    """{file name: text} of a finished cell: scores, binned losses, cell.json."""
    files = {}
    for stage in stages:
        if stage.name.startswith("score_") and os.path.exists(stage.done_path):
            with open(stage.done_path, encoding="utf-8") as f:
                files[SCORES_FILE.format(epoch=stage.name[len("score_"):])] = f.read()
    records = collect.loss_summary(paths.loss_log(cell))
    if records:
        files[LOSSES_FILE] = _losses_text(records)
    record = dict(cell_record(cell, scale, paths, stages), **extra)
    record["stored"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    files[CELL_FILE] = json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return files
