"""The reproduction grid: which cells exist, how they are named, and their train.py flags."""
import pytest

from scripts.repro import cells, commands
from scripts.repro.scales import SCALES, SMOKE, SYNTHCITY, Scale


def test_main_grid_pairs_adam_and_tradam_on_every_seed():
    grid = cells.expand(["main"], main_seeds=(0, 1, 2), ablation_seeds=(0,))
    names = [c.name for c in grid.cells]
    assert names == ["adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0",
                     "adam-bs1-seed1", "tradam-S10-l0.1-bs1-seed1",
                     "adam-bs1-seed2", "tradam-S10-l0.1-bs1-seed2"]
    assert all(c.variant.batch_size == 1 for c in grid.cells)


def test_full_grid_counts_and_shared_cells_appear_once():
    grid = cells.expand(cells.GROUPS, main_seeds=(0, 1, 2), ablation_seeds=(0,))
    names = [c.name for c in grid.cells]
    assert len(names) == len(set(names))
    # main 6; decomposition adds λ=0, no-sawtooth, Adam at TRAdam's mean lr, TRAdam at Adam's;
    # lambda_mode adds fixed and released; batch adds 4; λ adds 0.01, 1 (0 is shared with the
    # decomposition); S adds 1, 5, 20, 50
    assert len(names) == 6 + 4 + 2 + 4 + 2 + 4
    assert grid.groups["tradam-S10-l0-bs1-seed0"] == ["decomposition", "tr_lambda"]
    assert set(grid.groups["tradam-S10-l0.1-bs1-seed0"]) == set(cells.GROUPS)
    assert grid.groups["adam-bs1-seed1"] == ["main"]
    # the main grid runs first
    assert [c.name for c in grid.cells[:6]] == [c.name for c in cells.expand(["main"], (0, 1, 2), (0,)).cells]


def test_sweeps_can_run_on_fewer_seeds():
    grid = cells.expand(cells.GROUPS, (0, 1, 2, 3, 4), (0, 1, 2), sweep_seeds=(0,))
    assert grid.seeds == {"main": [0, 1, 2, 3, 4], "decomposition": [0, 1, 2], "lambda_mode": [0, 1, 2],
                          "batch_size": [0, 1, 2], "tr_lambda": [0], "inner_steps": [0]}
    assert "tradam-S10-l1-bs1-seed0" in grid.groups and "tradam-S10-l1-bs1-seed1" not in grid.groups
    # λ = 0 is also a decomposition cell, so it runs on the ablation seeds anyway
    assert grid.groups["tradam-S10-l0-bs1-seed2"] == ["decomposition"]
    assert grid.groups["tradam-S10-l0-bs1-seed0"] == ["decomposition", "tr_lambda"]


def test_ablation_values_are_the_issues():
    def values(group, attr):
        return [getattr(v, attr) for v in cells.group_variants(group)]
    assert values("inner_steps", "inner_steps") == [1, 5, 10, 20, 50]
    assert values("tr_lambda", "tr_lambda") == [0.0, 0.01, 0.1, 1.0]
    assert sorted(set(values("batch_size", "batch_size"))) == [1, 4, 8]
    decomp = cells.group_variants("decomposition")
    assert [v.optimizer for v in decomp] == ["adam", "tradam", "tradam", "tradam", "adam", "tradam"]
    assert decomp[4].lr_factor * decomp[5].lr_factor == pytest.approx(1.0)
    assert decomp[2].tr_lambda == 0 and decomp[2].inner_lr_decay
    assert decomp[3].tr_lambda == 0.1 and not decomp[3].inner_lr_decay
    assert [v.lambda_mode for v in cells.group_variants("lambda_mode")] == ["scaled", "fixed", "released"]


def test_mean_step_factor_is_harmonic_number_over_s():
    # H_10 / 10 = 7381/2520/10, written out by hand
    assert cells.harmonic_mean_factor(10) == pytest.approx(7381 / 25200, rel=1e-12)
    assert cells.harmonic_mean_factor(1) == 1.0
    assert cells.harmonic_mean_factor(2) == pytest.approx(0.75)


def test_adam_ignores_tr_settings_in_its_identity():
    assert cells.Variant("adam", tr_lambda=1.0, inner_steps=3) == cells.ADAM
    assert cells.Variant("adam", lr_factor=0.5).name == "adam-lrx0.5-bs1"


def test_select_and_unknown_names():
    grid = cells.expand(["main"], (0, 1), (0,))
    sub = cells.select(grid, ["tradam-S10-l0.1-bs1-seed1"])
    assert [c.name for c in sub.cells] == ["tradam-S10-l0.1-bs1-seed1"]
    with pytest.raises(ValueError, match="no cell named nope"):
        cells.select(grid, ["nope"])
    with pytest.raises(ValueError, match="unknown group"):
        cells.expand(["mian"], (0,), (0,))


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
    assert commands.NO_SAWTOOTH_FLAG in commands.cell_stages(nosaw, SYNTHCITY, paths, "cpu")[0].argv
    assert float(_flag(commands.cell_stages(meanlr, SYNTHCITY, paths, "cpu")[0].argv, "--lr")) == \
        pytest.approx(0.0002 * 7381 / 25200, rel=1e-5)
    assert _flag(commands.cell_stages(fixed, SYNTHCITY, paths, "cpu")[0].argv, "--tr_lambda_mode") == "fixed"


def test_stages_end_with_the_last_epochs_scores_and_curve_cells_score_each_saved_epoch():
    paths = commands.RunPaths.of(SYNTHCITY, "/tmp/w")
    cell = cells.Cell(cells.ADAM, 0)
    plain = commands.cell_stages(cell, SYNTHCITY, paths, "cpu")
    curve = commands.cell_stages(cell, SYNTHCITY, paths, "cpu", curve=True)
    assert [s.name for s in plain] == ["train", "test_latest", "score_latest"]
    saved = list(range(SYNTHCITY.save_epoch_freq, SYNTHCITY.total_epochs, SYNTHCITY.save_epoch_freq))
    assert [s.name for s in curve] == ["train"] + [f"{k}_{e}" for e in saved for k in ("test", "score")] \
        + ["test_latest", "score_latest"]
    assert plain[-1].done_path == "/tmp/w/results/repro_synthcity/adam-bs1-seed0/val_latest/fcn_scores.json"
    assert plain[0].done_path.endswith(f"adam-bs1-seed0/{SYNTHCITY.total_epochs}_net_G.pth")
    # only a cell asked for the ground-truth row scores the real photos, once, at its last epoch
    assert not any("--gt" in s.argv for s in curve)
    with_gt = commands.cell_stages(cell, SYNTHCITY, paths, "cpu", curve=True, ground_truth=True)
    assert [s.name for s in with_gt if "--gt" in s.argv] == ["score_latest"]


def test_scales():
    assert SCALES["cityscapes"].n_epochs == 100 and SCALES["cityscapes"].n_epochs_decay == 100
    assert "unet_256" in SCALES["cityscapes"].train_flags
    assert len(SYNTHCITY.seeds) >= 3 and SMOKE.groups == ("main",) and len(SMOKE.seeds) == 1
    with pytest.raises(ValueError, match="must divide"):
        Scale(name="x", dataset_dir="d", synthcity=None, train_flags=(), n_epochs=3, n_epochs_decay=0,
              save_epoch_freq=2, seeds=(0,), ablation_seeds=(0,), groups=("main",), curve_groups=())


def test_long_scale_is_synthcity_at_ten_times_the_steps():
    from scripts.repro.scales import SYNTHCITY_LONG as LONG
    # the same data, networks and segmenter (the same folder: one judge for both budgets)
    for field in ("dataset_dir", "synthcity", "train_flags", "segmenter_recipe", "segmenter_dir",
                  "test_flags", "score_flags", "lr"):
        assert getattr(LONG, field) == getattr(SYNTHCITY, field), field
    assert SYNTHCITY.steps() == 400 * 6 == 2400
    assert LONG.steps() == 400 * 60 == 24000 == 10 * SYNTHCITY.steps()
    assert (LONG.n_epochs, LONG.n_epochs_decay) == (30, 30)          # constant, then linear decay
    assert LONG.curve_epochs() == [10, 20, 30, 40, 50]                 # + the last (60): every 10 epochs
    assert LONG.groups == ("main", "decomposition") and LONG.curve_groups == ("main",)
    assert LONG.results_store == "docs/results/synthcity_long/cells"
    assert LONG.report_dir == "docs/results/synthcity_long" and LONG.compare_with == ("synthcity",)


def test_long_grid_main_on_five_seeds_decomposition_on_three():
    from scripts.repro.scales import SYNTHCITY_LONG as LONG
    grid = cells.expand(LONG.groups, LONG.seeds, LONG.ablation_seeds, LONG.sweep_seeds or LONG.ablation_seeds)
    assert grid.seeds == {"main": [0, 1, 2, 3, 4], "decomposition": [0, 1, 2]}
    assert len(grid.cells) == 10 + 4 * 3
    assert [c.name for c in grid.cells[:10]] == [c.name for c in cells.expand(["main"], LONG.seeds, (0,)).cells]
    labels = {c.variant.label for c in grid.cells_of("decomposition")}
    assert labels == {"Adam", "TRAdam S=10 λ=0.1", "TRAdam S=10 λ=0", "TRAdam S=10 λ=0.1 (no sawtooth)",
                      "Adam, lr × 0.2929", "TRAdam S=10 λ=0.1, lr × 3.414"}
    assert all(c.variant.batch_size == 1 for c in grid.cells)


def test_long_cells_train_24000_steps_on_pix2pix_schedule_and_score_every_10_epochs():
    from options.train_options import TrainOptions
    from pix2pix_tr.schedulers import LinearDecay
    from scripts.repro.scales import SYNTHCITY_LONG as LONG
    paths = commands.RunPaths.of(LONG, "/tmp/w")
    for variant in cells.group_variants("decomposition"):
        stages = commands.cell_stages(cells.Cell(variant, 0), LONG, paths, "cpu", curve=variant in (
            cells.ADAM, cells.TRADAM))
        opt = TrainOptions().parse(list(stages[0].argv[2:]))         # train.py accepts them as they are
        assert (opt.n_epochs, opt.n_epochs_decay, opt.save_epoch_freq, opt.batch_size) == (30, 30, 10, 1)
        assert opt.lr_policy == "linear" and opt.netG == "unet_128" and opt.ngf == opt.ndf == 16
        assert stages[0].done_path.endswith("/60_net_G.pth")
        scored = [s.name[len("score_"):] for s in stages if s.name.startswith("score_")]
        assert scored == (["10", "20", "30", "40", "50", "latest"] if variant in (cells.ADAM, cells.TRADAM)
                          else ["latest"])
    rule = LinearDecay(30, 30, 1)          # LambdaLR's epoch index from 0: 30 at lr, then down to ~0
    factors = [rule(e) for e in range(60)]
    assert factors[:30] == [1.0] * 30 and factors[-1] == pytest.approx(1 / 31)
    assert all(b < a for a, b in zip(factors[29:], factors[30:]))
