"""Committed cell results: each finished cell's small files, in a folder git tracks (e.g.
docs/results/synthcity_long/cells/), so that a grid continues on another machine and its report is
rebuilt from a fresh clone; the work dir (checkpoints, images, logs) is not in git.

    <cell>/cell.json                what it is and how it ran: variant, seed, steps, commands (paths
                                    relative to the work dir), code version, the segmenters' weights
                                    fingerprints, wall time, when it was stored
    <cell>/fcn_scores_<epoch>.json  evaluate/fcn_score.py's report of each scored epoch (`latest`: the last)
    <cell>/losses.json              the loss log binned as the report's loss plot draws it

A cell's folder appears whole or not at all. A stored cell is done: a re-run skips it and the report
reads it from here. Its commands must match today's up to paths, --device and --gt (`check_settings`),
and new cells must be judged by the same segmenter weights as the stored ones (`check_judges`).
"""
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
    """One folder of committed cell results, a sub-folder per cell."""

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
        with open(os.path.join(self.cell_dir(name), CELL_FILE), encoding="utf-8") as f:
            return json.load(f)

    def scores_path(self, name, epoch="latest"):
        return os.path.join(self.cell_dir(name), SCORES_FILE.format(epoch=epoch))

    def losses(self, name):
        """The binned loss records (dicts with `epoch_pos`), [] if none were stored."""
        path = os.path.join(self.cell_dir(name), LOSSES_FILE)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return [dict(zip(data["columns"], row)) for row in data["rows"]]

    def check(self, name, record):
        """Raise if the stored cell `name` was made with other settings than `record` says."""
        check_settings(os.path.join(self.cell_dir(name), CELL_FILE), record,
                       "delete its folder to run it again, or pass another --results_store")

    def check_judges(self, fingerprints, locations=None, where=None):
        """Raise if stored cells were judged by other weights of a segmenter than `fingerprints`
        ({label: SHA-256 or hub id}) say new cells would be: their scores could not be compared.
        `locations` ({label: path}) names where the weights are; `where` replaces that in the
        message (e.g. a finished cell's scores about to be stored)."""
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
        """Write {file name: text} as the folder of cell `name`, atomically: a reader sees the
        old folder or the new one, never a part."""
        os.makedirs(self.root, exist_ok=True)
        self.remove_leftovers()
        tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=atomic.TEMP_MARK, dir=self.root)
        try:
            os.chmod(tmp, 0o777 & ~atomic._UMASK)
            for file_name, text in files.items():
                with open(os.path.join(tmp, file_name), "w", encoding="utf-8") as f:
                    f.write(text)
            final = self.cell_dir(name)
            if os.path.exists(final):          # replaced: move the old one aside first
                old = tempfile.mkdtemp(prefix=f".{name}.old.", suffix=atomic.TEMP_MARK, dir=self.root)
                os.rmdir(old)
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise atomic.write_error(self.cell_dir(name), err) from None

    def remove_leftovers(self):
        """Delete temporary folders that a killed writer left (older than STALE_SECONDS, so a
        concurrent writer's folder is never touched)."""
        for entry in os.listdir(self.root) if os.path.isdir(self.root) else ():
            path = os.path.join(self.root, entry)
            try:
                if (entry.startswith(".") and atomic.TEMP_MARK in entry and os.path.isdir(path)
                        and time.time() - os.path.getmtime(path) > STALE_SECONDS):
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


# --- what a cell's commands must agree on ----------------------------------------------------

_IGNORED_WITH_VALUE = ("--device",)   # where it ran, not what it computes
_IGNORED = ("--gt",)                  # adds the real photos' row; the synthesized scores are the same


def settings(command_lines):
    """{stage: its words without the flags that do not change a cell's result}."""
    out = {}
    for stage, line in command_lines.items():
        words, skip = [], False
        for w in shlex.split(line):
            if skip:
                skip = False
            elif w in _IGNORED_WITH_VALUE:
                skip = True
            elif w not in _IGNORED:
                words.append(w)
        out[stage] = words
    return out


def check_settings(path, record, fix):
    """Raise if the cell.json at `path` records other settings than `record`; `fix` says what to do."""
    with open(path, encoding="utf-8") as f:
        old = settings(json.load(f).get("commands", {}))
    new = settings(record["commands"])
    if old != new:
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        raise UserError(f"cell {record['cell']} was made with other settings ({', '.join(changed)} differ, "
                        f"see {path}); {fix}")


def _short(fingerprint):
    """A SHA-256 as its first 12 digits (enough to tell weights apart in a message); a hub id whole."""
    return f"SHA-256 {fingerprint[:12]}…" if len(fingerprint) == 64 else fingerprint


# --- a cell's files -------------------------------------------------------------------------

def segmenter_fingerprints(scale, paths):
    """{segmenter label: digests.weights_fingerprint} of the scale's segmenters as they are now;
    one not made yet judged nothing and is left out."""
    prints = {collect.segmenter_label(seg): digests.weights_fingerprint(seg)
              for seg in commands.segmenter_paths(scale, paths)}
    return {label: f for label, f in prints.items() if f is not None}


def recorded_fingerprints(scores_path):
    """{segmenter label: weights fingerprint} that an fcn_scores.json recorded, {} for a file from
    before fcn_score recorded them."""
    try:
        with open(scores_path, encoding="utf-8") as f:
            report = json.load(f)
    except (OSError, ValueError):
        return {}
    return {collect.segmenter_label(name): s["weights_fingerprint"] for name, s in report.get("segmenters", {}).items()
            if isinstance(s, dict) and s.get("weights_fingerprint")}


def _losses_text(records):
    """losses.json: columns and one row per line (small diffs in git)."""
    columns = sorted({k for r in records for k in r}, key=lambda k: (k != "epoch_pos", k != "n", k))
    rows = [json.dumps([float(f"{r[c]:.5g}") if c in r else None for c in columns]) for r in records]
    return ('{\n  "columns": ' + json.dumps(columns) + ',\n  "rows": [\n    ' + ",\n    ".join(rows) +
            "\n  ]\n}\n")


def cell_record(cell, scale, paths, stages):
    """What the cell is and the commands that made it (the part a re-run compares)."""
    return {"cell": cell.name, "seed": cell.seed, "variant": dataclasses.asdict(cell.variant),
            "label": cell.variant.label, "scale": scale.name,
            "epochs": scale.total_epochs, "steps": scale.steps(batch_size=cell.variant.batch_size),
            "commands": {s.name: commands.shell_line(s.argv, paths.work_dir) for s in stages}}


def cell_files(cell, scale, paths, stages, extra):
    """{file name: text} of a finished cell, from the work dir: its scores, binned losses and
    cell.json (`extra` adds code version, timings, fingerprints)."""
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
