"""evaluate/fcn_score.py end to end on a tiny prepared dataset: several segmenters in one run
checked against a per-image numpy restatement, the ground-truth row, frame matching, bad results
folders, reports and --compare."""
import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from evaluate import fcn_score, report
from pix2pix_tr.errors import UserError
from tests.eval_helpers import make_dataset, naive_scores, tiny_segmenter, write_results


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    layout = make_dataset(root / "data", n_val=4, size=64, label_size=(128, 128))
    rng = np.random.default_rng(5)
    fids = layout.frame_ids("val")
    results = write_results(str(root / "results" / "adam_seed0" / "val_latest"),
                            {f: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for f in fids})
    seg_a, seg_b = str(root / "seg_a"), str(root / "seg_b")
    models = {seg_a: tiny_segmenter(seg_a, seed=1, native_size=(64, 64)), seg_b: tiny_segmenter(seg_b, seed=2)}
    return dict(root=root, layout=layout, fids=fids, results=results, segs=(seg_a, seg_b), models=models)


def run(world, *extra, results=None):
    return fcn_score.main(["--results_dir", results or world["results"], "--dataroot", world["layout"].root,
                           "--device", "cpu", "--num_workers", "0", *extra])


def test_two_segmenters_in_one_run_match_per_image_restatement(world):
    seg_a, seg_b = world["segs"]
    out = run(world, "--segmenter", seg_a, "--segmenter", seg_b, "--gt", "--batch_size", "2")
    layout, fids = world["layout"], world["fids"]
    images = [os.path.join(world["results"], "images", f"{f}_fake_B.png") for f in fids]
    labels = [layout.label_path("val", f) for f in fids]
    for seg, size in ((seg_a, (64, 64)), (seg_b, (128, 128))):       # native from segmenter.json / label size
        got = out["segmenters"][seg]
        assert got["eval_size"] == list(size)
        want = naive_scores(world["models"][seg], images, labels, size)
        for key in ("pixel_acc", "class_acc", "mean_iou"):
            assert got[key] == pytest.approx(want[key], abs=1e-9)
        assert 0 < got["pixel_acc"] < 1
        # what judged: the weights file's SHA-256, as sha256sum prints it
        with open(os.path.join(seg, "model.safetensors"), "rb") as f:
            assert got["weights_fingerprint"] == hashlib.sha256(f.read()).hexdigest()
    assert out["segmenters"][seg_a]["weights_fingerprint"] != out["segmenters"][seg_b]["weights_fingerprint"]
    # ground truth row: the photo halves of the val pairs, restated by cropping them by hand
    crops = []
    for f in fids:
        pair = np.asarray(Image.open(layout.pair_path("val", f, ".png")))
        path = str(world["root"] / f"gt_{f}.png")
        Image.fromarray(pair[:, 64:]).save(path)
        crops.append(path)
    want = naive_scores(world["models"][seg_b], crops, labels, (128, 128))
    assert out["ground_truth"][seg_b]["pixel_acc"] == pytest.approx(want["pixel_acc"], abs=1e-9)
    # reports written beside the results, json = returned dict, md in the paper's form
    with open(os.path.join(world["results"], "fcn_scores.json")) as f:
        assert json.load(f)["segmenters"][seg_a]["mean_iou"] == pytest.approx(out["segmenters"][seg_a]["mean_iou"])
    md = open(os.path.join(world["results"], "fcn_scores.md")).read()
    assert "| Method | seg_a: Per-pixel acc. | seg_a: Per-class acc. | seg_a: Class IOU | seg_b: Per-pixel acc." in md
    assert f"| adam_seed0 | {out['segmenters'][seg_a]['pixel_acc']:.3f} |" in md
    assert "| Ground truth |" in md and "## Per class" in md and "| road |" in md


def test_eval_size_override_and_images_folder(world):
    seg_a, _ = world["segs"]
    out = run(world, "--segmenter", seg_a, "--eval_size", "64", "32", "--output_dir", str(world["root"] / "o"),
              results=os.path.join(world["results"], "images"))
    assert out["segmenters"][seg_a]["eval_size"] == [64, 32] and out["run"] == "adam_seed0"
    assert os.path.isfile(world["root"] / "o" / "fcn_scores.md")


def test_a_label_with_a_pipe_stays_in_its_cell(world):
    seg_a, _ = world["segs"]
    out = run(world, "--segmenter", seg_a, "--label", "adam | lr 2e-4\nbatch 1",
              "--output_dir", str(world["root"] / "p"))
    md = (world["root"] / "p" / "fcn_scores.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| adam"))
    assert row.startswith(f"| adam \\| lr 2e-4 batch 1 | {out['segmenters'][seg_a]['pixel_acc']:.3f} |")
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert row.replace("\\|", "").count("|") == header.count("|")


def _copy_results(world, name, drop=(), extra=(), resize=None):
    rng = np.random.default_rng(0)
    images = {f: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for f in world["fids"] if f not in drop}
    for f in extra:
        images[f] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    if resize:
        images[world["fids"][0]] = np.zeros(resize + (3,), np.uint8)
    return write_results(str(world["root"] / name / "val_latest"), images)


def test_missing_and_unexpected_frames_are_listed(world):
    bad = _copy_results(world, "bad_frames", drop=world["fids"][:1], extra=["zurich_1", "zurich_2"])
    with pytest.raises(UserError) as err:
        run(world, "--segmenter", world["segs"][0], results=bad)
    msg = str(err.value)
    assert "1 frame(s) of the labels have no result images: frame_000" in msg
    assert "2 result images have no label: zurich_1, zurich_2" in msg and "\n" not in msg


def test_long_frame_lists_are_cut_with_a_count(world):
    bad = _copy_results(world, "many_extra", extra=[f"x{i}" for i in range(9)])
    with pytest.raises(UserError, match=r"9 result images have no label: x0, x1, x2, x3, x4, \.\.\. \(9 in all\)"):
        run(world, "--segmenter", world["segs"][0], results=bad)


def test_results_of_mixed_sizes_are_refused(world):
    bad = _copy_results(world, "mixed", resize=(48, 64))
    with pytest.raises(UserError, match=r"not all one size: 64x48 \(frame_000_fake_B.png\), 64x64"):
        run(world, "--segmenter", world["segs"][0], results=bad)


def test_wrong_layout_is_one_line(world, tmp_path):
    with pytest.raises(UserError, match="no <frame_id>_fake_B.png in .* expected test.py's"):
        run(world, "--segmenter", world["segs"][0], results=str(tmp_path))
    with pytest.raises(UserError, match="it has run folders: val_latest; pass one of them"):
        run(world, "--segmenter", world["segs"][0], results=os.path.dirname(world["results"]))
    with pytest.raises(UserError, match="does not exist"):
        run(world, "--segmenter", world["segs"][0], results=str(tmp_path / "nope"))


def _fake_report(run_name, pixel_acc, iou, gt=None):
    seg = {"s1": {"eval_size": [8, 8], "pixel_acc": pixel_acc, "class_acc": 0.5, "mean_iou": iou,
                  "per_class": {}, "absent": []}}
    out = {"run": run_name, "dataset": "tiny", "phase": "val", "num_frames": 4, "results_dir": "r", "segmenters": seg}
    if gt is not None:
        out["ground_truth"] = {"s1": dict(seg["s1"], pixel_acc=gt)}
    return out


def test_compare_groups_seeds_with_mean_and_std(tmp_path, capsys):
    dirs = []
    for name, acc, iou in (("adam_seed0", 0.60, 0.30), ("adam_seed1", 0.64, 0.34), ("tradam_seed0", 0.70, 0.40)):
        d = tmp_path / name
        d.mkdir()
        (d / "fcn_scores.json").write_text(json.dumps(_fake_report(name, acc, iou, gt=0.9)))
        dirs.append(str(d))
    table = fcn_score.main(["--compare", *dirs, "--output_dir", str(tmp_path)])
    adam = table["rows"]["adam"]["scores"]["s1"]["pixel_acc"]
    assert adam["mean"] == pytest.approx(0.62) and adam["n"] == 2
    assert adam["std"] == pytest.approx(np.std([0.60, 0.64], ddof=1))
    assert table["rows"]["tradam"]["runs"] == ["tradam_seed0"]
    md = (tmp_path / "fcn_compare.md").read_text()
    assert "| adam (n=2) | 0.620 ± 0.028 | 0.500 ± 0.000 | 0.320 ± 0.028 |" in md
    assert "| tradam (n=1) | 0.700 | 0.500 | 0.400 |" in md and "| Ground truth | 0.900 ± 0.000 |" in md
    assert "adam (n=2)" in capsys.readouterr().out
    assert report.group_label("x_seed12") == "x" and report.group_label("seedless") == "seedless"
    with pytest.raises(UserError, match="no fcn_scores.json"):
        fcn_score.main(["--compare", str(tmp_path / "missing")])
