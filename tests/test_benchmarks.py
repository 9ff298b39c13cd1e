"""The benchmarks run and report what docs/speed.md quotes from them: tiny settings here (the
figures themselves are measured by hand, see the README), but every variant, the ratios, the
anchor memory, the loader part and the kernel plan go through the same code as a real run."""
import argparse
import json
import re

import pytest
import torch

from pix2pix_tr import conv_backends
from scripts import bench_eval, bench_optim, bench_train

TINY = ["--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--size", "128", "--rounds", "2", "--warmup", "1"]


@pytest.mark.slow
def test_bench_train_reports_every_variant_the_ratios_anchors_and_loader(tmp_path, capsys):
    report_path = tmp_path / "report.json"
    bench_train.main([*TINY, "--variants", "plain adam,paper tradam,ours adam,ours tradam onednn,ours tradam",
                      "--json", str(report_path), "--loader", "--loader_frames", "4", "--loader_epochs", "1",
                      "--workers", "0", "--loader_root", str(tmp_path / "frames")])
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    variants = report["variants"]
    assert set(variants) == {"plain adam", "paper tradam", "ours adam", "ours tradam onednn", "ours tradam"}
    for name, v in variants.items():
        assert len(v["all_ms"]) == 2 and v["min_ms"] <= v["median_ms"]
        assert v["x_plain_adam"] == pytest.approx(v["median_ms"] / variants["plain adam"]["median_ms"])
    assert report["tradam_extra_state_over_params"] == 1.0          # the anchors: one copy, exactly
    ratio = float(re.search(r"ours tradam / plain adam: ([\d.]+)", out).group(1))
    assert ratio == pytest.approx(variants["ours tradam"]["x_plain_adam"], abs=5e-4)
    assert "ours' convolutions: native kernels in" in out and "cpu_conv_plan=auto" in report["settings"]
    rows = report["loader"]
    assert rows and all(row["samples_per_s"] > 0 and row["x_iteration_rate"] > 0 for row in rows)


@pytest.mark.slow
def test_bench_train_plans_the_convolutions_of_ours_only():
    args = argparse.Namespace(seed=0, ngf=8, ndf=8, netG="unet_128", netD="basic", size=128, channels_last=False,
                              compile=False, compile_mode=None, compiled=True, amp=False, mkldnn="default",
                              cpu_conv_plan="auto",
                              variants=["plain adam", "ours tradam onednn", "ours tradam"])
    variants = bench_train.build_variants(args, torch.device("cpu"))

    def planned(step):
        return {type(m) for net in (step.netG, step.netD) for _, m in conv_backends.convolutions(net)}

    assert planned(variants["ours tradam"]) == {conv_backends.PlannedConv2d, conv_backends.PlannedConvTranspose2d}
    assert planned(variants["ours tradam onednn"]) == {torch.nn.Conv2d, torch.nn.ConvTranspose2d}
    assert planned(variants["plain adam"]) == {torch.nn.Conv2d, torch.nn.ConvTranspose2d}
    args.cpu_conv_plan, args.variants = "onednn", ["ours tradam"]
    assert planned(bench_train.build_variants(args, torch.device("cpu"))["ours tradam"]) == \
        {torch.nn.Conv2d, torch.nn.ConvTranspose2d}


@pytest.mark.slow
def test_bench_optim_reports_the_ratio_and_one_anchor_copy(capsys):
    bench_optim.main(["--steps", "2", "--threads", "1"])
    out = capsys.readouterr().out
    assert re.search(r"TRAdam \(compiled=True: single pass\): median [\d.]+ ms/step, median ratio [\d.]+", out)
    assert "graphs compiled during the timed steps with a changing lr: 0" in out
    assert "one anchor copy = 207.6 MiB" in out                     # 54,413,955 parameters x 4 bytes


def test_bench_eval_reports_pipeline_against_the_forward_alone(capsys):
    bench_eval.main(["--frames", "2", "--eval_size", "64", "128", "--repeats", "1", "--num_workers", "0",
                     "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    rows = dict(re.findall(r"^(forward alone|fcn_score|naive loop)\s+[\d.]+\s+([\d.]+)$", out, re.M))
    assert set(rows) == {"forward alone", "fcn_score", "naive loop"}
    assert re.search(r"fcn_score / naive loop: [\d.]+x", out)
