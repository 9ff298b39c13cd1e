"""The benchmarks of scripts/bench/ print what docs/speed.md quotes from them: every variant, the ratios,
the anchor memory, the loader. Tiny networks and few rounds here; the figures are measured by hand."""
import json
import re

import pytest

from pix2pix_tr.models.networks import define_G
from scripts.bench import eval as bench_eval, optim as bench_optim, train as bench_train


@pytest.mark.slow
def test_train_prints_every_variant_the_ratios_the_anchors_and_the_loader(tmp_path, capsys):
    bench_train.main(["--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--size", "128", "--rounds", "2",
                      "--warmup", "1", "--threads", "1", "--json", str(tmp_path / "report.json"), "--loader",
                      "--loader_frames", "2", "--loader_epochs", "1", "--workers", "0",
                      "--loader_root", str(tmp_path / "frames")])
    out = capsys.readouterr().out
    ms = {name: float(median) for name, median in re.findall(r"^(\w+ \w+) +(\d+) +\d+ +[\d.]+ ", out, re.M)}
    assert list(ms) == ["plain adam", "paper tradam", "ours adam", "ours tradam"]
    report = json.loads((tmp_path / "report.json").read_text())["variants"]
    assert {name: round(v["median_ms"]) for name, v in report.items()} == ms
    ratio = report["ours tradam"]["median_ms"] / report["plain adam"]["median_ms"]
    assert f"ours tradam / plain adam: {ratio:.3f}" in out and "ours tradam / ours adam: " in out
    assert re.search(r"TRAdam state beyond Adam's: [\d.]+ MB = 1.000 x the parameters", out)   # the anchors
    assert re.search(r"^  workers 0 +[\d.]+ samples/s = +[\d.]+x$", out, re.M)


@pytest.mark.slow
def test_optim_prints_the_ratio_no_recompile_and_one_anchor_copy(capsys):
    bench_optim.main(["--steps", "2", "--threads", "1", "--ngf", "8"])
    out = capsys.readouterr().out
    assert re.search(r"TRAdam \(compiled=True: single pass\): median [\d.]+ ms/step, median ratio [\d.]+", out)
    assert "graphs compiled during the timed steps with a changing lr: 0" in out
    params = sum(p.numel() for p in define_G(3, 3, 8, "unet_256").parameters())
    assert f"one anchor copy = {params * 4 / 2**20:.1f} MiB" in out


def test_eval_prints_the_pipeline_and_the_naive_loop_against_the_forward_alone(capsys):
    bench_eval.main(["--frames", "2", "--size", "64", "--eval_size", "64", "128", "--repeats", "1",
                     "--num_workers", "0", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(forward alone|fcn_score|naive loop) +[\d.]+ +([\d.]+)$", out, re.M))
    assert rows.keys() == {"forward alone", "fcn_score", "naive loop"} and rows["forward alone"] == "1.00"
    assert "segmenter segformer-b0-untrained (native size protocol)" in out
    assert re.search(r"fcn_score / naive loop: [\d.]+x", out)
