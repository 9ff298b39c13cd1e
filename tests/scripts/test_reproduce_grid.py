"""The reproduction grid (scripts/repro/cells.py) and a cell's commands (commands.py): which cells
exist and how they are named, what their train.py flags vary, and which stages each one runs."""
import pytest

from scripts.repro import cells, commands
from scripts.repro.scales import SYNTHCITY, SYNTHCITY_LONG, Scale


def test_the_grid_runs_the_main_comparison_first_and_a_shared_cell_once():
    grid = cells.expand(cells.GROUPS, (0, 1, 2, 3, 4), (0, 1, 2), sweep_seeds=(0,))
    names = [c.name for c in grid.cells]
    assert names[:4] == ["adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0", "adam-bs1-seed1", "tradam-S10-l0.1-bs1-seed1"]
    assert len(names) == len(set(names)) == 46          # the committed 46-cell SynthCity grid
    assert grid.seeds == {"main": [0, 1, 2, 3, 4], "decomposition": [0, 1, 2], "lambda_mode": [0, 1, 2],
                          "batch_size": [0, 1, 2], "tr_lambda": [0], "inner_steps": [0]}
    # TRAdam λ=0 is a decomposition cell and a λ-sweep cell: trained once, on the seeds of either
    assert grid.groups["tradam-S10-l0-bs1-seed0"] == ["decomposition", "tr_lambda"]
    assert grid.groups["tradam-S10-l0-bs1-seed2"] == ["decomposition"]
    assert "tradam-S10-l1-bs1-seed0" in grid.groups and "tradam-S10-l1-bs1-seed1" not in grid.groups
    assert set(grid.groups["tradam-S10-l0.1-bs1-seed0"]) == set(cells.GROUPS)


def test_mean_step_factor_is_harmonic_number_over_s():
    # H_10 / 10 = 7381/2520/10, written out by hand
    assert cells.harmonic_mean_factor(10) == pytest.approx(7381 / 25200, rel=1e-12)
    assert cells.harmonic_mean_factor(1) == 1.0 and cells.harmonic_mean_factor(2) == pytest.approx(0.75)


def test_a_variant_is_named_by_what_it_is():
    assert cells.Variant("adam", tr_lambda=1.0, inner_steps=3) == cells.ADAM     # TR settings mean nothing
    assert cells.Variant("adam", lr_factor=0.5).name == "adam-lrx0.5-bs1"
    variant = cells.Variant("tradam", tr_lambda=0.0, lambda_mode="fixed", inner_lr_decay=False, batch_size=4)
    assert variant.name == "tradam-S10-l0-fixedlambda-nosawtooth-bs4"
    assert variant.label == "TRAdam S=10 λ=0 (fixed λ) (no sawtooth), batch 4"


def _flag(argv, name):
    argv = list(argv)
    return argv[argv.index(name) + 1] if name in argv else None


def test_train_flags_differ_only_in_what_the_cell_varies():
    paths = commands.RunPaths.of(SYNTHCITY, "/tmp/w")
    adam, tradam, nosaw, meanlr, fixed = [cells.Cell(v, 3) for v in (
        cells.ADAM, cells.TRADAM, cells.Variant("tradam", inner_lr_decay=False),
        cells.Variant("adam", lr_factor=cells.harmonic_mean_factor(10)),
        cells.Variant("tradam", lambda_mode="fixed"))]
    a = commands.cell_stages(adam, SYNTHCITY, paths, "cpu")[0].argv
    t = commands.cell_stages(tradam, SYNTHCITY, paths, "cpu")[0].argv
    assert _flag(a, "--optimizer") == "adam" and _flag(t, "--optimizer") == "tradam"
    assert _flag(t, "--tr_lambda") == "0.1" and _flag(t, "--tr_inner_steps") == "10"
    assert _flag(a, "--seed") == _flag(t, "--seed") == "3"
    strip = {"--optimizer", "adam", "tradam", "--tr_lambda", "0.1", "--tr_inner_steps", "10",
             "--name", adam.name, tradam.name}
    assert [x for x in a if x not in strip] == [x for x in t if x not in strip]
    assert "--tr_no_inner_lr_decay" in commands.cell_stages(nosaw, SYNTHCITY, paths, "cpu")[0].argv
    assert float(_flag(commands.cell_stages(meanlr, SYNTHCITY, paths, "cpu")[0].argv, "--lr")) == \
        pytest.approx(0.0002 * 7381 / 25200, rel=1e-5)
    assert _flag(commands.cell_stages(fixed, SYNTHCITY, paths, "cpu")[0].argv, "--tr_lambda_mode") == "fixed"


def test_stages_end_with_the_last_epochs_scores_and_curve_cells_score_each_saved_epoch():
    paths = commands.RunPaths.of(SYNTHCITY, "/tmp/w")
    cell = cells.Cell(cells.ADAM, 0)
    plain = commands.cell_stages(cell, SYNTHCITY, paths, "cpu")
    curve = commands.cell_stages(cell, SYNTHCITY, paths, "cpu", curve=True)
    assert [s.name for s in plain] == ["train", "test_latest", "score_latest"]
    assert [s.name for s in curve] == ["train", "test_2", "score_2", "test_4", "score_4", "test_latest", "score_latest"]
    assert plain[-1].done_path == "/tmp/w/results/repro_synthcity/adam-bs1-seed0/val_latest/fcn_scores.json"
    assert plain[0].done_path == "/tmp/w/checkpoints/repro_synthcity/adam-bs1-seed0/6_net_G.pth"
    # only a cell asked for the ground-truth row scores the real photos, once, at its last epoch
    assert not any("--gt" in s.argv for s in curve)
    with_gt = commands.cell_stages(cell, SYNTHCITY, paths, "cpu", curve=True, ground_truth=True)
    assert [s.name for s in with_gt if "--gt" in s.argv] == ["score_latest"]


def test_the_last_saved_epoch_must_end_training():
    with pytest.raises(ValueError, match="must divide"):
        Scale(name="x", dataset_dir="d", synthcity=None, train_flags=(), n_epochs=3, n_epochs_decay=0,
              save_epoch_freq=2, seeds=(0,), ablation_seeds=(0,), groups=("main",), curve_groups=())


def test_train_py_takes_every_cells_flags_as_they_are():
    from options.train_options import TrainOptions
    paths = commands.RunPaths.of(SYNTHCITY_LONG, "/tmp/w")
    for variant in cells.VARIANTS["decomposition"] + cells.VARIANTS["lambda_mode"]:
        stages = commands.cell_stages(cells.Cell(variant, 0), SYNTHCITY_LONG, paths, "cpu")
        opt = TrainOptions().parse(list(stages[0].argv[2:]))
        scale = SYNTHCITY_LONG
        assert (opt.n_epochs, opt.n_epochs_decay, opt.save_epoch_freq) == (scale.n_epochs, scale.n_epochs_decay,
                                                                          scale.save_epoch_freq)
        assert (opt.optimizer, opt.batch_size, opt.seed) == (variant.optimizer, variant.batch_size, 0)
        assert opt.tr_no_inner_lr_decay == (not variant.inner_lr_decay)
        shared = dict(zip(scale.train_flags[::2], scale.train_flags[1::2]))     # the scale's flags, all pairs
        assert (opt.netG, str(opt.ngf)) == (shared["--netG"], shared["--ngf"])
