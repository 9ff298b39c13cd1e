"""pix2pix's FCN-8s from a .caffemodel, proven against an independent engine: OpenCV 4's Caffe importer
(`cv2.dnn.readNetFromCaffe`; OpenCV 5 removed it, so opencv-python-headless<5 is installed for these
tests alone under .cache/opencv4 and run in a subprocess with that folder first on PYTHONPATH).

The tests write a random-weight caffemodel of pix2pix's deploy.prototxt (restated here) with narrower
layers (every kernel, pad, stride, crop and output the real one's; the real widths are checked on the
module's shapes) and a deploy.prototxt for OpenCV, and require:
PyTorch's logits equal OpenCV's to 1e-5 relative with the same argmax on >= 99.99% of pixels; the
three figures of `fcn_score.py --segmenter X.caffemodel --gt` over a small labelled set equal those
restated here (PIL upsampling, BGR mean, numpy confusion matrix, pix2pix's get_scores) from OpenCV's
predictions, under weights for which nearly every class wins somewhere; the conversion cache; the
legacy spellings; one-line errors for bad files; and the benchmark's FCN-8s rows.
"""
import glob
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.evaluate import caffe_writer
from evaluate import fcn8s, fcn_score, protocols
from pix2pix_tr.errors import UserError
from tests.eval_helpers import make_dataset, write_results

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENCV4 = os.path.join(REPO, ".cache", "opencv4")
BGR_MEAN = np.array([72.78044, 83.21195, 73.45286], np.float32).reshape(3, 1, 1)   # pix2pix's cityscapes.py

# pix2pix's deploy.prototxt, restated: (name, kind, bottom, out channels, kernel, stride, pad)
VGG = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]
MID = dict(widths=(16, 32, 64, 64, 64), fc=256)          # the OpenCV comparison's stand-in
NARROW = dict(widths=(4, 8, 8, 16, 16), fc=16)          # the file-format tests'
REAL_FCN8S = fcn8s.FCN8s


def _mid_model():
    return REAL_FCN8S(widths=MID["widths"], fc_width=MID["fc"])


def _narrow_model():
    return REAL_FCN8S(widths=NARROW["widths"], fc_width=NARROW["fc"])


def architecture(widths=(64, 128, 256, 512, 512), fc=4096):
    layers, c_in, bottom = [], 3, "data"
    for (block, depth, _), width in zip(VGG, widths):
        for i in range(1, depth + 1):
            name = f"conv{block}_{i}"
            layers.append((name, "Convolution", bottom, c_in, width, 3, 1, 100 if name == "conv1_1" else 1))
            c_in, bottom = width, name
        layers.append((f"pool{block}", "Pooling", bottom, None, None, 2, 2, 0))
        bottom = f"pool{block}"
    layers += [("fc6_cs", "Convolution", "pool5", c_in, fc, 7, 1, 0),
               ("fc7_cs", "Convolution", "fc6_cs", fc, fc, 1, 1, 0),
               ("score_fr", "Convolution", "fc7_cs", fc, 20, 1, 1, 0),
               ("upscore2", "Deconvolution", "score_fr", 20, 20, 4, 2, 0),
               ("score_pool4", "Convolution", "pool4", widths[3], 20, 1, 1, 0),
               ("upscore_pool4", "Deconvolution", "fuse_pool4", 20, 20, 4, 2, 0),
               ("score_pool3", "Convolution", "pool3", widths[2], 20, 1, 1, 0),
               ("upscore8", "Deconvolution", "fuse_pool3", 20, 20, 16, 8, 0)]
    return layers


def random_weights(seed, widths=(64, 128, 256, 512, 512), fc=4096, only=None):
    """He-normal weights (deconvolutions by their fan-in per output pixel) and small random biases:
    activations keep their scale through the 20 layers, and the argmax varies over nearly all 20
    outputs, so a wrong crop, transpose or mean cannot hide behind one collapsed class."""
    rng = np.random.default_rng(seed)
    out = []
    for name, kind, bottom, c_in, c_out, k, stride, _ in architecture(widths, fc):
        if kind == "Pooling" or (only is not None and name not in only):
            continue
        if kind == "Deconvolution":      # Caffe: [in, out, kh, kw], no bias
            std = np.float32(np.sqrt(2 * stride ** 2 / (c_in * k * k)))
            w = rng.standard_normal((c_in, c_out, k, k), dtype=np.float32) * std
            out.append((name, kind, [w], [bottom], [name]))
        else:
            std = np.float32(np.sqrt(2 / (c_in * k * k)))
            w = rng.standard_normal((c_out, c_in, k, k), dtype=np.float32) * std
            b = rng.standard_normal(c_out, dtype=np.float32) * 0.1
            out.append((name, kind, [w, b], [bottom], [name]))
    return out


def deploy_prototxt(widths=(64, 128, 256, 512, 512), fc=4096):
    """pix2pix's deploy.prototxt (layers, crops, sums), for OpenCV."""
    lines = ['layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 64 dim: 64 } } }']
    for name, kind, bottom, c_in, c_out, k, stride, pad in architecture(widths, fc):
        if kind == "Pooling":
            lines.append(f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
                         f'pooling_param {{ pool: MAX kernel_size: {k} stride: {stride} }} }}')
            continue
        bias = "" if kind == "Convolution" else " bias_term: false"
        lines.append(f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{name}" convolution_param '
                     f'{{ num_output: {c_out} pad: {pad} kernel_size: {k} stride: {stride}{bias} }} }}')
        if name.startswith(("conv", "fc")):
            lines.append(f'layer {{ name: "relu_{name}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
        for crop, fused, up, off in (("score_pool4", "fuse_pool4", "upscore2", 5),
                                     ("score_pool3", "fuse_pool3", "upscore_pool4", 9)):
            if name == crop:
                lines.append(f'layer {{ name: "{crop}c" type: "Crop" bottom: "{crop}" bottom: "{up}" top: "{crop}c" '
                             f'crop_param {{ axis: 2 offset: {off} }} }}')
                lines.append(f'layer {{ name: "{fused}" type: "Eltwise" bottom: "{up}" bottom: "{crop}c" '
                             f'top: "{fused}" eltwise_param {{ operation: SUM }} }}')
    lines.append('layer { name: "score" type: "Crop" bottom: "upscore8" bottom: "data" top: "score" '
                 'crop_param { axis: 2 offset: 31 } }')
    return "\n".join(lines) + "\n"


OPENCV_RUNNER = r'''
import sys
import numpy as np
import cv2
assert cv2.__version__.startswith("4."), cv2.__version__
cv2.setNumThreads(1)
net = cv2.dnn.readNetFromCaffe(sys.argv[1], sys.argv[2])
net.enableWinograd(False)                     # plain fp32 convolutions
net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
inputs = np.load(sys.argv[3])
out = {}
for key in inputs.files:
    net.setInput(inputs[key][None])
    out[key] = net.forward("score")[0]
np.savez(sys.argv[4], **out)
print(cv2.__version__)
'''


@pytest.fixture(scope="session")
def opencv4():
    """A folder holding OpenCV 4 (installed once, gitignored); the main environment keeps OpenCV 5."""
    if not glob.glob(os.path.join(OPENCV4, "opencv_python_headless-4.*.dist-info")):
        tmp = f"{OPENCV4}.tmp{os.getpid()}"
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-deps", "--target", tmp, "opencv-python-headless<5"],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode:
            pytest.fail("these tests need OpenCV 4 (opencv-python-headless<5) from PyPI as an independent Caffe "
                        f"engine and could not install it: {proc.stderr.strip()[-400:]}")
        shutil.rmtree(OPENCV4, ignore_errors=True)
        os.replace(tmp, OPENCV4)
    return OPENCV4


def run_opencv(opencv_dir, prototxt, caffemodel, inputs, folder):
    """OpenCV 4's logits [20, H, W] for each preprocessed input [3, H, W] (dict), in one subprocess."""
    runner, src, dst = folder / "opencv_runner.py", folder / "opencv_in.npz", folder / "opencv_out.npz"
    runner.write_text(OPENCV_RUNNER)
    np.savez(src, **inputs)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([opencv_dir, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(runner), str(prototxt), str(caffemodel), str(src), str(dst)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().startswith("4."), proc.stdout
    with np.load(dst) as out:
        return {k: out[k] for k in out.files}


def pix2pix_input(image, label_size, real_photo):
    """Restated from pix2pix's evaluate.py + cityscapes.py: scipy.misc.imresize (PIL bilinear) to the
    label's size (real photos via 256x256), float32, RGB->BGR, minus the mean, CHW."""
    im = Image.fromarray(image)
    if real_photo:
        im = im.resize((256, 256), Image.BILINEAR)
    im = np.asarray(im.resize((label_size[1], label_size[0]), Image.BILINEAR), np.float32)
    return im[:, :, ::-1].transpose(2, 0, 1) - BGR_MEAN


def get_scores(predictions, labels):
    """pix2pix's util.py, with a 20th column for the no-class output instead of fast_hist's mis-binning."""
    hist = np.zeros((19, 20))
    for pred, lab in zip(predictions, labels):
        keep = lab < 19
        np.add.at(hist, (lab[keep].astype(int), pred[keep].astype(int)), 1)
    diag = np.diag(hist[:, :19])
    acc = diag.sum() / (hist.sum() + 1e-12)
    cl_acc = diag / (hist.sum(1) + 1e-12)
    iu = diag / (hist.sum(1) + hist[:, :19].sum(0) - diag + 1e-12)
    return {"pixel_acc": acc, "class_acc": np.nanmean(cl_acc), "mean_iou": np.nanmean(iu)}


@pytest.fixture(scope="module")
def world(tmp_path_factory, opencv4):
    """The random FCN-8s (caffemodel + prototxt), a 3-frame labelled set with results, and both
    engines' logits for pix2pix's inputs of every frame (results and real photos) and for two
    odd-sized images: OpenCV's from inputs restated here, ours through the evaluator (converted and
    cached on first load)."""
    root = tmp_path_factory.mktemp("fcn8s")
    model_path, prototxt = root / "fcn-8s-cityscapes.caffemodel", root / "deploy.prototxt"
    caffe_writer.write_caffemodel(model_path, random_weights(seed=0, **MID), name="FCN8s-random")
    prototxt.write_text(deploy_prototxt(**MID))
    label_size = (40, 72)
    layout = make_dataset(root / "data", n_val=3, size=32, label_size=label_size, seed=1)
    rng = np.random.default_rng(2)
    fids = layout.frame_ids("val")
    result_images = {f: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for f in fids}
    results = write_results(str(root / "results" / "random_seed0" / "val_latest"), result_images)
    labels = {f: np.asarray(Image.open(layout.label_path("val", f))) for f in fids}
    photos = {f: np.asarray(Image.open(layout.pair_path("val", f, ".png")))[:, 32:] for f in fids}
    odd = {"odd_57x33": rng.integers(0, 256, (57, 33, 3), dtype=np.uint8),
           "odd_24x90": rng.integers(0, 256, (24, 90, 3), dtype=np.uint8)}
    inputs = {f"result_{f}": pix2pix_input(result_images[f], label_size, False) for f in fids}
    inputs.update({f"photo_{f}": pix2pix_input(photos[f], label_size, True) for f in fids})
    inputs.update({k: v[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) - BGR_MEAN for k, v in odd.items()})
    opencv = run_opencv(opencv4, prototxt, model_path, inputs, root)

    cache = str(root / "cache")
    evaluator = protocols.Pix2PixFCN8s(str(model_path), fcn8s.load_fcn8s(str(model_path), cache_dir=cache,
                                                                         model=_mid_model(), log=lambda *a: None),
                                       "cpu")
    ours_in = dict(odd)
    ours_in.update({f"result_{f}": protocols.upsample_like_pix2pix(result_images[f], label_size) for f in fids})
    ours_in.update({f"photo_{f}": protocols.upsample_like_pix2pix(photos[f], label_size, protocols.PIX2PIX_GT_SIZE)
                    for f in fids})
    ours = {k: evaluator.logits(torch.from_numpy(v).permute(2, 0, 1)[None])[0].numpy() for k, v in ours_in.items()}
    return dict(root=root, model=str(model_path), cache=cache, layout=layout, fids=fids, results=results,
                labels=labels, opencv=opencv, ours=ours, label_size=label_size)


@pytest.fixture
def mid_by_default(monkeypatch):
    """fcn_score and the benchmark build the stand-in's widths where they would build the real network."""
    monkeypatch.setattr(fcn8s, "FCN8s", _mid_model)


def _load(world):
    return fcn8s.load_fcn8s(world["model"], cache_dir=world["cache"], model=_mid_model(), log=lambda *a: None)


def test_the_module_has_the_deploy_prototxts_layers():
    with torch.device("meta"):
        model = fcn8s.FCN8s()
    layers = [layer for layer in architecture() if layer[1] != "Pooling"]
    assert sorted(n for n, _ in model.named_children()) == sorted(name for name, *_ in layers)
    for name, kind, _, c_in, c_out, k, stride, pad in layers:
        module = getattr(model, name)
        want = (c_in, c_out, k, k) if kind == "Deconvolution" else (c_out, c_in, k, k)
        assert tuple(module.weight.shape) == want, name
        assert (module.stride, module.padding, module.bias is None) == ((stride,) * 2, (pad,) * 2,
                                                                        kind == "Deconvolution"), name


@pytest.mark.slow
def test_logits_equal_opencv_caffe_importer(world):
    assert set(world["ours"]) == set(world["opencv"]) and len(world["ours"]) == 8
    for key, theirs in world["opencv"].items():
        ours = world["ours"][key]
        assert ours.shape == theirs.shape and ours.shape[0] == 20, key
        assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max(), key
    agree = np.concatenate([(world["ours"][k].argmax(0) == v.argmax(0)).ravel() for k, v in world["opencv"].items()])
    assert agree.mean() >= 0.9999
    predicted = np.unique(np.concatenate([v.argmax(0).ravel() for v in world["opencv"].values()]))
    assert len(predicted) >= 15 and 19 in predicted                  # many classes, and no-class too


@pytest.mark.slow
def test_fcn_score_figures_equal_a_restatement_over_opencv(world, mid_by_default):
    # OpenCV's predictions, except at near ties (top two logits closer than the 1e-5 tolerance allows two
    # engines to differ): there either class is right, and the one our engine picked must be one of the two
    predictions, near_ties = {}, 0
    for key, theirs in world["opencv"].items():
        top2 = np.argsort(theirs, 0, kind="stable")[-2:]
        gap = np.take_along_axis(theirs, top2[1:], 0)[0] - np.take_along_axis(theirs, top2[:1], 0)[0]
        ours = world["ours"][key].argmax(0)
        pred = theirs.argmax(0)
        tie = gap <= 2e-5 * np.abs(theirs).max()
        assert np.all((ours == pred) | (tie & ((ours == top2[0]) | (ours == top2[1])))), key
        predictions[key] = np.where(tie, ours, pred)
        near_ties += int(tie.sum())
    assert near_ties <= 1e-4 * sum(p.size for p in predictions.values())
    out = fcn_score.main(["--results_dir", world["results"], "--dataroot", world["layout"].root, "--segmenter",
                          world["model"], "--gt", "--device", "cpu", "--num_workers", "0",
                          "--segmenter_cache", world["cache"]])
    labels = [world["labels"][f] for f in world["fids"]]
    for row, prefix in (("segmenters", "result_"), ("ground_truth", "photo_")):
        rows = [predictions[prefix + f] for f in world["fids"]]
        assert len(np.unique(np.concatenate([p.ravel() for p in rows]))) >= 15
        want = get_scores(rows, labels)
        got = out[row][world["model"]]
        for key in ("pixel_acc", "class_acc", "mean_iou"):
            assert got[key] == pytest.approx(want[key], abs=1e-9), (row, key)
        assert got["eval_size"] == list(world["label_size"]) and got["averaging"] == "pix2pix"
    md = open(os.path.join(world["results"], "fcn_scores.md")).read()
    assert "pix2pix FCN-8s protocol" in md and "Comparable with: pix2pix (Isola et al. 2017) Table 2" in md
    assert "| *pix2pix L1+cGAN (published)* | 0.660 | 0.230 | 0.170 |" in md
    assert "| *Ground truth (pix2pix, published)* | 0.800 | 0.260 | 0.210 |" in md
    assert f"| random_seed0 | {out['segmenters'][world['model']]['pixel_acc']:.3f} |" in md


@pytest.mark.slow
def test_conversion_is_cached_by_the_files_hash(world, monkeypatch):
    model = _load(world)
    digest = fcn8s.file_sha256(world["model"])
    cached = os.path.join(world["cache"], f"fcn8s-w16-32-64-64-64-256-{digest[:16]}.safetensors")
    assert os.path.isfile(cached)
    from safetensors import safe_open

    with safe_open(cached, "pt") as f:
        assert f.metadata()["sha256"] == digest
    monkeypatch.setattr(fcn8s, "read_net", lambda path: pytest.fail("converted again despite the cache"))
    again = _load(world)
    for (k, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


@pytest.mark.slow
def test_v1_layers_double_data_and_legacy_dims_convert_alike(tmp_path):
    layers = random_weights(seed=3, **NARROW)
    states = []
    for i, spelling in enumerate([{}, dict(v1=True), dict(double=True), dict(legacy_dims=True),
                                  dict(v1=True, double=True, legacy_dims=True)]):
        path = tmp_path / f"m{i}.caffemodel"
        caffe_writer.write_caffemodel(path, layers, **spelling)
        states.append(fcn8s.load_fcn8s(str(path), cache_dir=str(tmp_path / "cache"), model=_narrow_model(),
                                       log=lambda *a: None).state_dict())
    for state in states[1:]:
        for k in states[0]:
            assert torch.equal(states[0][k], state[k]), k
    first = dict((name, blobs) for name, _, blobs, _, _ in layers)
    assert torch.equal(states[0]["upscore8.weight"], torch.from_numpy(first["upscore8"][0]))
    assert torch.equal(states[0]["conv3_2.bias"], torch.from_numpy(first["conv3_2"][1]))


def test_a_corrupt_cache_is_converted_again(tmp_path):
    path = tmp_path / "m.caffemodel"
    caffe_writer.write_caffemodel(path, random_weights(seed=4, **NARROW))
    notes = []
    fcn8s.load_fcn8s(str(path), cache_dir=str(tmp_path), model=_narrow_model(), log=notes.append)
    cached = glob.glob(str(tmp_path / "fcn8s-w4-8-8-16-16-16-*.safetensors"))
    assert len(cached) == 1 and "converting" in notes[0]
    with open(cached[0], "r+b") as f:
        f.truncate(100)
    fcn8s.load_fcn8s(str(path), cache_dir=str(tmp_path), model=_narrow_model(), log=notes.append)
    assert "unreadable" in notes[1] and "converting" in notes[2]


@pytest.mark.slow
def test_bad_files_are_one_line_naming_the_culprit(tmp_path):
    def load(path, model=None):
        if model is None:
            with torch.device("meta"):
                model = fcn8s.FCN8s()        # the real shapes, no memory: every file here fails a check
        return fcn8s.load_fcn8s(str(path), cache_dir=str(tmp_path / "cache"), model=model, log=lambda *a: None)

    png = tmp_path / "photo.caffemodel"
    Image.new("RGB", (8, 8)).save(png, format="PNG")
    text = tmp_path / "deploy.caffemodel"
    text.write_text(deploy_prototxt())
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    for path, pattern in ((png, r"photo.caffemodel is not a Caffe model \(.*\); pass pix2pix's fcn-8s-cityscapes"),
                          (text, r"deploy.caffemodel is a text network description \(a .prototxt\)"),
                          (empty, r"empty.caffemodel is not a Caffe model with weights"),
                          (tmp_path / "missing.caffemodel", r"no such file; use pix2pix's fcn-8s-cityscapes"
                                                             r".caffemodel \(537 MB\), fetched by pix2pix's "
                                                             r"scripts/eval_cityscapes/download_fcn8s.sh")):
        with pytest.raises(UserError, match=pattern) as err:
            load(path)
        assert "\n" not in str(err.value)
    whole = tmp_path / "whole.caffemodel"
    size = caffe_writer.write_caffemodel(whole, random_weights(seed=6, **NARROW))
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(whole.read_bytes()[:size * 2 // 3])
    with pytest.raises(UserError, match=rf"cut.caffemodel is truncated \(cut short: .*; the file has {size * 2 // 3:,} "
                                        r"bytes\): download it again"):
        load(cut, _narrow_model())
    # the real network's checks, on small files: layers missing, another number of outputs
    few = tmp_path / "few.caffemodel"
    caffe_writer.write_caffemodel(few, random_weights(seed=5, only={"conv1_1", "score_fr"}))
    with pytest.raises(UserError, match=r"few.caffemodel has no layer conv1_2, conv2_1, conv2_2, conv3_1 \(and 15 "
                                        r"more\) of pix2pix's FCN-8s \(its layers with weights: conv1_1, score_fr\)"):
        load(few)
    voc = tmp_path / "voc.caffemodel"
    caffe_writer.write_caffemodel(voc, [("score_fr", "Convolution", [np.zeros((21, 4096, 1, 1), np.float32),
                                                              np.zeros(21, np.float32)], [], [])])
    with pytest.raises(UserError, match=r"voc.caffemodel predicts 21 outputs \(layer score_fr\), pix2pix's Cityscapes "
                                        r"FCN-8s predicts 20 \(19 classes \+ no class\).*21 is PASCAL VOC's"):
        load(voc)
    # another shape, named by layer (a narrow network whose conv3_2 reads 4 channels instead of 8)
    wrong = random_weights(seed=7, **NARROW)
    wrong = [(n, k, [b[0][:, :4]] + b[1:] if n == "conv3_2" else b, bo, t) for n, k, b, bo, t in wrong]
    bad_shape = tmp_path / "shape.caffemodel"
    caffe_writer.write_caffemodel(bad_shape, wrong)
    with pytest.raises(UserError, match=r"shape.caffemodel: layer conv3_2 weight is 8x4x3x3, pix2pix's FCN-8s has "
                                        r"8x8x3x3"):
        load(bad_shape, _narrow_model())
    bias_less = [(n, k, b[:1], bo, t) if n == "fc7_cs" else (n, k, b, bo, t) for n, k, b, bo, t in
                 random_weights(seed=8, **NARROW)]
    caffe_writer.write_caffemodel(bad_shape, bias_less)
    with pytest.raises(UserError, match=r"layer fc7_cs has 1 weight blob\(s\), pix2pix's FCN-8s has 2"):
        load(bad_shape, _narrow_model())


@pytest.mark.slow
def test_the_cli_says_it_in_one_line(tmp_path):
    layout = make_dataset(tmp_path / "data", n_val=1, size=32, label_size=(32, 32))
    results = write_results(str(tmp_path / "res" / "val_latest"),
                            {f: np.zeros((32, 32, 3), np.uint8) for f in layout.frame_ids("val")})
    voc = tmp_path / "voc-fcn8s.caffemodel"
    caffe_writer.write_caffemodel(voc, [("score_fr", "Convolution", [np.zeros((21, 4096, 1, 1), np.float32),
                                                              np.zeros(21, np.float32)], [], [])])
    proc = subprocess.run([sys.executable, "evaluate/fcn_score.py", "--results_dir", results, "--dataroot",
                           layout.root, "--segmenter", str(voc), "--device", "cpu", "--segmenter_cache",
                           str(tmp_path / "cache")], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"error: .*voc-fcn8s.caffemodel predicts 21 outputs \(layer score_fr\)",
                                        lines[0]), proc.stderr


@pytest.mark.slow
def test_bench_eval_reports_the_fcn8s_against_its_forward_alone(world, mid_by_default, capsys):
    from scripts.bench import eval as bench_eval

    bench_eval.main(["--segmenter", world["model"], "--segmenter_cache", world["cache"], "--frames", "2",
                     "--size", "32", "--repeats", "1", "--num_workers", "0", "--threads", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "pix2pix FCN-8s protocol" in out
    rows = dict(re.findall(r"^(forward alone|fcn_score|naive loop)\s+[\d.]+\s+([\d.]+)$", out, re.M))
    assert set(rows) == {"forward alone", "fcn_score", "naive loop"} and float(rows["forward alone"]) == 1.0
