"""Committed cell results (scripts/repro/store.py): written whole when a cell finishes, read back on a
fresh work dir (the cell is not run again), the report rebuilt from them alone, changed settings
refused, new cells judged by other segmenter weights refused, and a report with more finished cells
than can be found is not overwritten.

The cells' stages are faked (stage outputs written in-process, with known scores), so these tests
take seconds; tests/scripts/test_reproduce_smoke.py runs the real tools."""
import importlib.util
import json
import os
import shutil
import subprocess

import pytest

from evaluate.digests import weights_fingerprint
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic
from scripts.repro import cells, collect, commands, plots, store
from scripts.repro.scales import SYNTHCITY_LONG

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("reproduce_for_store", os.path.join(REPO, "scripts", "reproduce.py"))
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)

SEG = "repro_synthcity_segmenter"
MAIN = ["adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0", "adam-bs1-seed1", "tradam-S10-l0.1-bs1-seed1"]
GAP_PLOT = plots.gap_plot


def fake_scores(name, epoch):
    """Known scores: Adam 0.60/0.40/0.30 + 0.01·seed, TRAdam 0.02 lower at the first scoring and
    closing by 0.004 per scored epoch; `epoch` 'latest' is the 60th."""
    e = SYNTHCITY_LONG.total_epochs if epoch == "latest" else int(epoch)
    seed = int(name.rsplit("seed", 1)[1])
    base = [0.60 + 0.01 * seed, 0.40 + 0.01 * seed, 0.30 + 0.01 * seed]
    if name.startswith("tradam"):
        base = [v - 0.02 + 0.004 * (e // 10 - 1) + 0.001 * seed for v in base]
    return {SEG: dict(zip(("pixel_acc", "class_acc", "mean_iou"), base), per_class={}, absent=[])}


def fake_run_chain(name, stages, log_dir, env):
    """commands.run_chain without subprocesses: each pending stage writes its output."""
    ran = []
    for stage in commands.pending(stages):
        if name in cut_after_train and ran:
            cut_after_train.discard(name)
            calls.append((name, ran))
            return commands.Outcome(name, "failed", "killed", 5.0)
        os.makedirs(os.path.dirname(stage.done_path), exist_ok=True)
        if stage.name == "train":
            with open(os.path.join(os.path.dirname(stage.done_path), "loss_log.jsonl"), "w") as f:
                for i in range(480):
                    f.write(json.dumps({"epoch": 1 + i // 8, "iters": 50 * (1 + i % 8), "losses": {
                        "G_GAN": 1.0, "G_L1": 20.0 - i / 40, "D_real": 0.5, "D_fake": 0.4}}) + "\n")
        if stage.name.startswith("score_"):
            report = {"run": name, "phase": "val", "segmenters": fake_scores(name, stage.name[6:])}
            segmenter = stage.argv[stage.argv.index("--segmenter") + 1]
            if os.path.exists(segmenter):           # as fcn_score records what judged
                report["segmenters"][SEG]["weights_fingerprint"] = weights_fingerprint(segmenter)
            if "--gt" in stage.argv:
                report["ground_truth"] = {SEG: dict(pixel_acc=0.95, class_acc=0.86, mean_iou=0.71)}
            atomic.write_json(stage.done_path, report)     # as fcn_score does: a reader sees all or nothing
        else:
            open(stage.done_path, "w").close()
        ran.append(stage.name)
    calls.append((name, ran))
    return commands.Outcome(name, "done" if name != "prepare" or ran else "skipped", "", 12.5,
                          whole=len(ran) == len(stages))


calls = []
cut_after_train = set()     # cells whose next run stops after training (as if killed)


@pytest.fixture
def fake_tools(monkeypatch):
    """Stages faked, and the report's plots skipped (two thirds of these tests' time; the report's own tests
    draw them, and test_report_only_from_the_committed_files_alone the gap over training)."""
    calls.clear()
    cut_after_train.clear()
    monkeypatch.setattr(commands, "run_chain", fake_run_chain)
    for name in ("loss_plot", "curve_plot", "gap_plot"):
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: False)
    return calls


def _argv(tmp_path, work, *extra):
    return ["--scale", "synthcity_long", "--work_dir", str(tmp_path / work), "--results_store",
            str(tmp_path / "committed" / "cells"), "--report_dir", str(tmp_path / "committed"), *extra]


@pytest.mark.slow
def test_finished_cells_are_stored_and_a_fresh_work_dir_does_not_run_them_again(tmp_path, fake_tools):
    assert reproduce.main(_argv(tmp_path, "work1", "--cells", ",".join(MAIN))) == 0
    assert sorted(n for n, _ in fake_tools if n != "prepare") == sorted(MAIN)
    cells_dir = tmp_path / "committed" / "cells"
    st = store.Store(str(cells_dir))
    assert st.names() == sorted(MAIN)
    files = sorted(os.listdir(cells_dir / "adam-bs1-seed0"))
    assert files == ["cell.json"] + [f"fcn_scores_{e}.json" for e in (10, 20, 30, 40, 50)] + \
        ["fcn_scores_latest.json", "losses.json"]
    # a main cell is scored every 10 epochs; a decomposition-only cell would store only 'latest'
    record = st.record("tradam-S10-l0.1-bs1-seed1")
    assert record["steps"] == 24000 and record["epochs"] == 60 and record["seed"] == 1
    assert record["wall_seconds"] == 12.5 and record["code_version"]
    train = record["commands"]["train"]
    assert train.startswith("python train.py --dataroot datasets/synthcity_repro128 ")
    assert str(tmp_path) not in json.dumps(record["commands"])      # portable across machines
    assert "--n_epochs 30 --n_epochs_decay 30 --save_epoch_freq 10" in train
    losses = st.losses("adam-bs1-seed0")
    assert 0 < len(losses) <= collect.LOSS_POINTS and losses[0]["epoch_pos"] < 1
    assert losses[-1]["G_L1"] < losses[0]["G_L1"]
    # no checkpoints or images in the store: just small text files
    assert all(f.endswith(".json") for _, _, fs in os.walk(cells_dir) for f in fs)
    assert sum(f.stat().st_size for f in cells_dir.rglob("*")) < 100_000

    # another machine: a fresh work dir, the same command. Nothing of the stored cells runs, nor
    # the preparation (dataset, segmenter), which no cell needs.
    fake_tools.clear()
    assert reproduce.main(_argv(tmp_path, "work2", "--cells", ",".join(MAIN))) == 0
    assert fake_tools == []
    assert not (tmp_path / "work2" / "checkpoints").exists()
    # ... and the missing ones are the only ones that run
    more = ["adam-bs1-seed2", "tradam-S10-l0.1-bs1-seed2"]
    assert reproduce.main(_argv(tmp_path, "work2", "--cells", ",".join(MAIN + more))) == 0
    assert sorted(n for n, _ in fake_tools if n != "prepare") == sorted(more)
    assert st.names() == sorted(MAIN + more)


@pytest.mark.slow
def test_report_only_from_the_committed_files_alone(tmp_path, fake_tools, monkeypatch):
    assert reproduce.main(_argv(tmp_path, "work1", "--cells", ",".join(MAIN))) == 0
    first = (tmp_path / "committed" / "report.md").read_text()
    assert "| Adam | 0.605 ± 0.007 (n=2) |" in first
    assert "Validation frames" not in first          # the fake tools write no images
    monkeypatch.setattr(plots, "gap_plot", GAP_PLOT)
    fresh = tmp_path / "fresh"                      # nothing but the store
    assert reproduce.main(_argv(tmp_path, "fresh", "--report_only")) == 0
    assert not fresh.exists() or not any(fresh.rglob("*.json"))
    md = (tmp_path / "committed" / "report.md").read_text()
    assert "Cells finished: 4 of 22" in md and "4 of the 4 finished cells were read from there" in md
    assert "| Adam | 0.605 ± 0.007 (n=2) |" in md
    assert "| Ground truth (real photos) | 0.950 | 0.860 | 0.710 |" in md
    assert "Sample images omitted" in md
    assert "Wall time of the 4 cells timed in one go: mean 0.2 min" in md
    # the gap over training: at epoch 10 TRAdam − Adam = −0.02 + 0.001·seed -> −0.0195 over seeds 0, 1
    assert "| 10 | 4,000 | constant | -0.0195 [" in md and "| 60 | 24,000 | decay | +0.0005 [" in md
    assert (tmp_path / "committed" / "gap_over_training_0.png").exists()
    # the command that made it, without --report_only
    assert "python scripts/reproduce.py --scale synthcity_long" in md and "--report_only" not in md
    # the across-budget table: the short budget from the committed SynthCity main grid's cells
    short = os.path.join(commands.REPO, "docs", "results", "synthcity", "cells")

    def iou(cell):
        with open(os.path.join(short, cell, "fcn_scores_latest.json"), encoding="utf-8") as f:
            (scores,) = json.load(f)["segmenters"].values()
        return scores["mean_iou"]
    gaps = [iou(f"tradam-S10-l0.1-bs1-seed{s}") - iou(f"adam-bs1-seed{s}") for s in range(5)]
    assert f"| Class IOU | {sum(gaps) / 5:+.4f} [" in md and "(n=5) | +0.0005 [" in md


@pytest.mark.slow
@pytest.mark.parametrize("collect", [False, True])     # --collect: the same, and the missing cells do not run
def test_cells_finished_in_the_work_dir_before_are_stored_without_running(tmp_path, fake_tools, collect):
    assert reproduce.main(["--scale", "synthcity_long", "--work_dir", str(tmp_path / "w"), "--results_store",
                           "none", "--report_dir", str(tmp_path / "r"), "--cells", MAIN[0]]) == 0
    fake_tools.clear()
    assert reproduce.main(_argv(tmp_path, "w", *(["--collect"] if collect else ["--cells", MAIN[0]]))) == 0
    assert fake_tools == []
    assert store.Store(str(tmp_path / "committed" / "cells")).names() == [MAIN[0]]
    record = store.Store(str(tmp_path / "committed" / "cells")).record(MAIN[0])
    assert record["stored_from"] == "the work dir, after it finished" and record["wall_seconds"] is None


@pytest.mark.slow
def test_a_cell_finished_in_two_runs_is_not_counted_as_timed_in_one_go(tmp_path, fake_tools):
    cut_after_train.add(MAIN[1])
    assert reproduce.main(_argv(tmp_path, "w", "--cells", ",".join(MAIN[:2]))) == 1    # MAIN[1] failed
    assert reproduce.main(_argv(tmp_path, "w", "--cells", ",".join(MAIN[:2]))) == 0    # ... and finishes
    st = store.Store(str(tmp_path / "committed" / "cells"))
    assert st.record(MAIN[0])["wall_seconds"] == 12.5
    record = st.record(MAIN[1])
    assert record["wall_seconds"] is None and record["wall_seconds_of_last_part"] == 12.5
    md = (tmp_path / "committed" / "report.md").read_text()
    assert "Wall time of the 1 cell timed in one go: mean 0.2 min" in md


@pytest.mark.slow
def test_a_group_run_on_its_own_reuses_the_main_grids_stored_baseline(tmp_path, fake_tools):
    assert reproduce.main(_argv(tmp_path, "w", "--cells", ",".join(MAIN[:2]))) == 0
    # the decomposition's Adam and TRAdam baselines are the main grid's cells, scored over training
    # there; run alone, the decomposition must take them as they are, not refuse them as changed
    fake_tools.clear()
    assert reproduce.main(_argv(tmp_path, "w2", "--groups", "decomposition", "--report_dir", str(tmp_path / "dec"),
                                "--cells", "tradam-S10-l0-bs1-seed0")) == 0
    assert [n for n, _ in fake_tools if n != "prepare"] == ["tradam-S10-l0-bs1-seed0"]
    st = store.Store(str(tmp_path / "committed" / "cells"))
    assert os.path.exists(st.scores_path(MAIN[0], 10))                        # still its curve
    assert not os.path.exists(st.scores_path("tradam-S10-l0-bs1-seed0", 10))  # an ablation: final only
    md = (tmp_path / "dec" / "report.md").read_text()
    assert "| TRAdam S=10 λ=0 | 0.6" in md and "Cells finished: 3 of" in md


@pytest.mark.slow
def test_a_stored_cell_made_with_other_settings_is_refused(tmp_path, fake_tools):
    assert reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[0])) == 0
    path = tmp_path / "committed" / "cells" / MAIN[0] / "cell.json"
    record = json.loads(path.read_text())
    record["commands"]["train"] = record["commands"]["train"].replace("--n_epochs 30", "--n_epochs 3")
    path.write_text(json.dumps(record))
    with pytest.raises(UserError, match=f"cell {MAIN[0]} was made with other settings \\(train differ"):
        reproduce.main(_argv(tmp_path, "w2", "--report_only"))
    # where it ran (--device) and the real photos' row (--gt) do not change a cell's result
    record["commands"]["train"] = record["commands"]["train"].replace("--n_epochs 3", "--n_epochs 30") \
        .replace("--device cpu", "--device cuda")
    record["commands"]["score_latest"] = record["commands"]["score_latest"].replace(" --gt", "")
    path.write_text(json.dumps(record))
    assert reproduce.main(_argv(tmp_path, "w2", "--report_only")) == 0
    # a work dir's unfinished cells are held to their cell.json the same way
    cut_after_train.add(MAIN[1])
    alone = ["--scale", "synthcity_long", "--work_dir", str(tmp_path / "w3"), "--results_store", "none",
             "--report_dir", str(tmp_path / "r3"), "--cells", MAIN[1]]
    assert reproduce.main(alone) == 1                                       # cut after training
    path = tmp_path / "w3" / "results" / "repro_synthcity_long" / MAIN[1] / "cell.json"
    path.write_text(path.read_text().replace("--n_epochs 30", "--n_epochs 3"))
    with pytest.raises(UserError, match=f"cell {MAIN[1]} was made with other settings .* another --work_dir"):
        reproduce.main(alone)


@pytest.mark.slow
def test_new_cells_are_not_judged_by_other_weights_than_the_stored_ones(tmp_path, fake_tools):
    import hashlib

    weights = tmp_path / "w" / "checkpoints" / SEG / "model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"first weights")
    assert reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[0])) == 0
    cells_dir = tmp_path / "committed" / "cells"
    first = hashlib.sha256(b"first weights").hexdigest()
    assert store.Store(str(cells_dir)).record(MAIN[0])["segmenters"] == {SEG: first}
    assert reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[1])) == 0      # same weights: fine

    weights.write_bytes(b"retrained")                                         # another judge
    refusal = (f"2 stored cell\\(s\\) in .* \\(e.g. {MAIN[0]}, see its cell.json\\) were judged by other "
               f"weights of {SEG} \\(SHA-256 {first[:12]}…\\) than .*{SEG} holds now \\(SHA-256 "
               f"{hashlib.sha256(b'retrained').hexdigest()[:12]}…\\)")
    fake_tools.clear()
    with pytest.raises(UserError, match=refusal):
        reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[2]))
    assert [n for n, _ in fake_tools if n != "prepare"] == []                 # nothing was run
    # a cell the retrained judge scored in the work dir (no store) is not taken into the store either
    assert reproduce.main(["--scale", "synthcity_long", "--work_dir", str(tmp_path / "w"), "--results_store",
                           "none", "--report_dir", str(tmp_path / "elsewhere"), "--cells", MAIN[2]]) == 0
    with pytest.raises(UserError, match=refusal):
        reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[2]))
    assert store.Store(str(cells_dir)).names() == sorted(MAIN[:2])
    # the stored cells alone still make a report: nothing new is judged
    assert reproduce.main(_argv(tmp_path, "w", "--report_only")) == 0
    # the old weights back: the grid goes on, but the cell the retrained weights scored is still
    # refused, since its scores file says what judged it
    weights.write_bytes(b"first weights")
    with pytest.raises(UserError, match=f"2 stored cell\\(s\\) .* than {MAIN[2]}'s scores in the work dir "
                                        "were judged by \\(SHA-256 "
                                        f"{hashlib.sha256(b'retrained').hexdigest()[:12]}…\\): delete"):
        reproduce.main(_argv(tmp_path, "w", "--cells", MAIN[3]))
    shutil.rmtree(tmp_path / "w" / "results" / "repro_synthcity_long" / MAIN[2])
    assert reproduce.main(_argv(tmp_path, "w", "--cells", f"{MAIN[2]},{MAIN[3]}", "--overwrite_report")) == 0
    assert store.Store(str(cells_dir)).names() == sorted(MAIN)
    assert {store.Store(str(cells_dir)).record(n)["segmenters"][SEG] for n in MAIN} == {first}


def test_a_report_counting_more_cells_than_can_be_found_is_not_overwritten(tmp_path, fake_tools):
    report_dir = tmp_path / "committed"
    report_dir.mkdir()
    (report_dir / "report.md").write_text("... an older report, no results.json beside it ...\n")
    with pytest.raises(UserError, match="report.md has no results.json beside it"):
        reproduce.main(_argv(tmp_path, "w", "--report_only"))
    (report_dir / "results.json").write_text('{"cells_finished": 46}')
    with pytest.raises(UserError, match="counts 46 finished cells but only 0 are in this work dir and store"):
        reproduce.main(_argv(tmp_path, "w", "--report_only"))
    assert (report_dir / "report.md").read_text().startswith("...")
    assert reproduce.main(_argv(tmp_path, "w", "--report_only", "--overwrite_report")) == 0
    assert "Cells finished: 0 of 22" in (report_dir / "report.md").read_text()
    assert reproduce.main(_argv(tmp_path, "w", "--report_only")) == 0        # 0 then, 0 now


def test_store_writes_a_cell_whole_or_not_at_all(tmp_path):
    st = store.Store(str(tmp_path / "cells"))
    st.write("c", {"cell.json": "{}\n", "a.json": "1\n"})
    assert st.has("c") and st.names() == ["c"]
    with pytest.raises(UserError, match="cannot write"):
        st.write("d", {"cell.json": "{}\n", "no/such/dir.json": "x"})
    assert not st.has("d") and sorted(os.listdir(tmp_path / "cells")) == ["c"]   # no half folder
    st.write("c", {"cell.json": '{"v": 2}\n'})                                    # replaced whole
    assert st.record("c") == {"v": 2} and os.listdir(tmp_path / "cells" / "c") == ["cell.json"]
    assert sorted(os.listdir(tmp_path / "cells")) == ["c"]
    # a killed writer's temporary folder is cleared once it is old
    stale = tmp_path / "cells" / ".e.x.tmp"
    stale.mkdir()
    os.utime(stale, (0, 0))
    st.write("f", {"cell.json": "{}\n"})
    assert not stale.exists() and st.names() == ["c", "f"]


def test_loss_summary_bins_the_log(tmp_path):
    log = tmp_path / "loss_log.jsonl"
    log.write_text("".join(json.dumps({"epoch": 1 + i // 8, "iters": 50 * (1 + i % 8), "losses": {"G_L1": float(i)}})
                           + "\n" for i in range(480)))
    out = collect.loss_summary(str(log))
    assert len(out) == 120 and all(r["n"] == 4 for r in out)
    assert out[0]["G_L1"] == pytest.approx(1.5) and out[0]["epoch_pos"] == pytest.approx((1 + 2 + 3 + 4) / 32)
    assert collect.loss_summary(str(log), 1000)[-1]["epoch_pos"] == 60
    assert collect.loss_summary(str(tmp_path / "none.jsonl")) == []


def test_portable_commands_and_settings(tmp_path):
    paths = commands.RunPaths.of(SYNTHCITY_LONG, str(tmp_path))
    cell = cells.Cell(cells.ADAM, 0)
    stages = commands.cell_stages(cell, SYNTHCITY_LONG, paths, "cpu", ground_truth=True)
    rec = store.cell_record(cell, SYNTHCITY_LONG, paths, stages)
    other = store.cell_record(cell, SYNTHCITY_LONG, commands.RunPaths.of(SYNTHCITY_LONG, "/elsewhere"),
                              commands.cell_stages(cell, SYNTHCITY_LONG,
                                                   commands.RunPaths.of(SYNTHCITY_LONG, "/elsewhere"), "cuda"))
    assert rec["commands"] != other["commands"]
    assert store.settings(rec["commands"]) == store.settings(other["commands"])


def test_git_commit_commits_only_the_store_and_the_report(tmp_path, monkeypatch):
    def git(*args):
        return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout
    (tmp_path / "code.py").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "start")
    monkeypatch.setattr(reproduce.commands, "REPO", str(tmp_path))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@t")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@t")
    (tmp_path / "code.py").write_text("someone else's staged work\n")
    git("add", "code.py")
    report_dir = tmp_path / "docs" / "long"
    st = store.Store(str(report_dir / "cells"))
    st.write("adam-bs1-seed0", {"cell.json": "{}\n"})
    (report_dir / "report.md").write_text("report\n")
    plan = type("Plan", (), {"report_dir": str(report_dir), "store": st, "own_dirs": reproduce.Plan.own_dirs})()
    assert reproduce.commit_results(plan, "long: adam-bs1-seed0 finished")
    assert git("show", "--name-only", "--format=%s", "HEAD").split() == [
        "long:", "adam-bs1-seed0", "finished", "docs/long/cells/adam-bs1-seed0/cell.json", "docs/long/report.md"]
    assert git("diff", "--cached", "--name-only").split() == ["code.py"]     # still staged, not committed
    assert not reproduce.commit_results(plan, "nothing new")


def test_segmenter_fingerprints_name_the_judge(tmp_path):
    import dataclasses
    import hashlib

    seg = tmp_path / "my_segmenter"
    seg.mkdir()
    (seg / "model.safetensors").write_bytes(b"weights")
    (seg / "config.json").write_text("{}")               # not weights: not hashed
    scale = dataclasses.replace(SYNTHCITY_LONG, segmenters=(str(seg), "smp-hub/segformer-b0"))
    prints = store.segmenter_fingerprints(scale, commands.RunPaths.of(scale, str(tmp_path)))
    assert prints == {"my_segmenter": hashlib.sha256(b"weights").hexdigest(),
                      "segformer-b0": "smp-hub/segformer-b0"}
    # a local segmenter not made yet has no fingerprint, and no judge is compared with it
    scale = dataclasses.replace(SYNTHCITY_LONG, segmenters=(str(tmp_path / "not_trained_yet"),))
    assert store.segmenter_fingerprints(scale, commands.RunPaths.of(scale, str(tmp_path))) == {}
    assert weights_fingerprint(str(tmp_path / "not_trained_yet")) is None
    # one weights file (pix2pix's .caffemodel): its own SHA-256; a folder of two: of their digests
    (tmp_path / "fcn.caffemodel").write_bytes(b"caffe")
    assert weights_fingerprint(str(tmp_path / "fcn.caffemodel")) == hashlib.sha256(b"caffe").hexdigest()
    (seg / "extra.bin").write_bytes(b"more")
    both = hashlib.sha256(b"more").hexdigest() + hashlib.sha256(b"weights").hexdigest()   # name order
    assert weights_fingerprint(str(seg)) == hashlib.sha256(both.encode()).hexdigest()
