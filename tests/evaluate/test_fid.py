"""fcn_score.py --fid end to end with a stand-in Inception: random weights saved in torch-fidelity's
format and read through --fid_weights, the path real weights take. FID is checked against a scipy
restatement (means, covariances, scipy.linalg.sqrtm) on the features the run computed, KID against
the unbiased polynomial-kernel MMD^2 written out here; identical image sets give FID ~ 0; the
results' size against the photos', and the weights' own (missing, not weights, another network,
offline), are one line."""
import json
import os
import shutil
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from evaluate import fcn_score, fid
from pix2pix_tr.errors import UserError
from tests.eval_helpers import make_dataset, stand_in_inception, tiny_segmenter, write_results

N = 4          # frames: Inception at 299x299 costs ~0.2-0.5 s an image on one CPU core
SIZE = 64


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    layout = make_dataset(root / "data", n_val=N, size=SIZE, label_size=(SIZE, SIZE))
    fids = layout.frame_ids("val")
    rng = np.random.default_rng(3)
    results = write_results(str(root / "results" / "adam_seed0" / "val_latest"),      # darker than the photos
                            {f: rng.integers(0, 128, (SIZE, SIZE, 3), dtype=np.uint8) for f in fids})
    photos = {f: np.asarray(Image.open(layout.pair_path("val", f, ".png")))[:, SIZE:] for f in fids}
    same = write_results(str(root / "results" / "photos_seed0" / "val_latest"), photos)
    seg = str(root / "seg")
    tiny_segmenter(seg, seed=1)
    weights = stand_in_inception(str(root / "inception-standin.pth"))
    yield dict(root=root, layout=layout, fids=fids, results=results, same=same, photos=photos, seg=seg,
               weights=weights)
    os.remove(weights)            # 91 MB: pytest keeps the last runs' temporary folders


@pytest.fixture
def one_thread():
    """Two torch threads on two busy cores spin-wait on each other (docs/evaluate.md): 5x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(world, results, *extra):
    return fcn_score.main(["--results_dir", results, "--dataroot", world["layout"].root, "--device", "cpu",
                           "--num_workers", "0", "--segmenter", world["seg"], *extra])


def frechet(a, b):
    """The Fréchet distance of two Gaussians fitted to feature rows, restated with scipy's sqrtm:
    |mu_a - mu_b|^2 + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^1/2). With n << 2048 rows both covariances
    live in the span Q of the centred rows (2n - 2 dimensions), so the traces and the square root are
    taken there: C = Q (Q'CQ) Q', and C_a C_b has the nonzero eigenvalues of (Q'C_aQ)(Q'C_bQ). Exact,
    well conditioned, and milliseconds instead of a minute for sqrtm of a singular 2048 x 2048."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    q = scipy.linalg.orth(np.concatenate([a - mu_a, b - mu_b]).T)
    cov_a, cov_b = np.cov((a - mu_a) @ q, rowvar=False), np.cov((b - mu_b) @ q, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root).real)


def unbiased_kid(x, y):
    """MMD^2 with k(a, b) = (a.b / d + 1)^3: within-set sums without the diagonal over m(m-1), the
    cross sum over m^2 (Binkowski et al. 2018, eq. 3 with the polynomial kernel of their KID)."""
    m, d = len(x), x.shape[1]
    kxx, kyy, kxy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))
    off = lambda k: k.sum() - np.trace(k)  # noqa: E731
    return (off(kxx) + off(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2


@pytest.mark.slow
def test_fid_and_kid_equal_their_restatements(world, one_thread, monkeypatch):
    seen = []                                  # the features the run computed: results first, then photos
    real_features = fid.features
    monkeypatch.setattr(fid, "features", lambda *a, **k: seen.append(real_features(*a, **k)) or seen[-1])
    out = run(world, world["results"], "--fid", "--fid_weights", world["weights"])
    got = out["fid_kid"]
    fake, real = (f.numpy() for f in seen)
    assert fake.shape == real.shape == (N, 2048) and fake.dtype == np.float64
    assert np.ptp(fake, axis=0).max() > 0.01    # the stand-in tells the images apart

    # the rows are the Inception features of the right images: frame 0's result and its real photo,
    # read here with PIL and run through torch-fidelity's own extractor (its forward, TF1's resize)
    # loaded from the same file
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    inception = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=world["weights"]).eval()
    first = world["fids"][0]
    result0 = np.asarray(Image.open(os.path.join(world["results"], "images", f"{first}_fake_B.png")).convert("RGB"))
    with torch.no_grad():
        for image, row in ((result0, fake[0]), (world["photos"][first], real[0])):
            want, = inception(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None])
            np.testing.assert_allclose(row, want[0].double().numpy(), rtol=1e-4, atol=1e-5)

    assert got["fid"] == pytest.approx(frechet(fake, real), rel=1e-5)
    assert got["fid"] > 0.01

    # KID: torchmetrics' subsets (from the CPU generator seeded with kid_seed: a permutation of the real
    # rows, then one of the results', per subset), each scored by the formula above; mean and
    # (population) std over them
    m = got["kid_subset_size"]
    assert m == N // 2 and got["kid_subsets"] == 100 and got["kid_seed"] == fid.KID_SEED
    gen = torch.Generator().manual_seed(fid.KID_SEED)
    per_subset = []
    for _ in range(got["kid_subsets"]):
        real_rows, fake_rows = (torch.randperm(N, generator=gen)[:m].numpy() for _ in range(2))
        per_subset.append(unbiased_kid(fake[fake_rows], real[real_rows]))
    assert got["kid"] == pytest.approx(np.mean(per_subset), rel=1e-6, abs=1e-12)
    assert got["kid_std"] == pytest.approx(np.std(per_subset), rel=1e-6, abs=1e-12) and got["kid_std"] > 0
    # a subset of all frames is the whole-set estimator, whatever the draw
    whole = fid.fid_kid(seen[0], seen[1], kid_subset_size=N)
    assert whole["kid"] == pytest.approx(unbiased_kid(fake, real), rel=1e-6) and whole["kid_std"] == pytest.approx(0)

    # the report: json = returned dict, the table's FID and KID columns, the protocol line
    with open(os.path.join(world["results"], "fcn_scores.json")) as f:
        assert json.load(f)["fid_kid"]["fid"] == pytest.approx(got["fid"])
    md = open(os.path.join(world["results"], "fcn_scores.md")).read()
    assert "| Method | seg: Per-pixel acc. | seg: Per-class acc. | seg: Class IOU | FID | KID |" in md
    assert f" | {got['fid']:.2f} | {got['kid']:.4f} ± {got['kid_std']:.4f} |" in md
    assert "- **FID, KID** (torchmetrics " in md and "weights inception-standin.pth" in md
    assert got["size"] == [SIZE, SIZE] and got["num_results"] == got["num_real"] == N
    assert got["weights_sha256"] == fid.file_sha256(world["weights"])


@pytest.mark.slow
def test_identical_image_sets_give_zero_fid_and_compare_has_the_columns(world, one_thread, tmp_path):
    out = run(world, world["same"], "--fid", "--fid_weights", world["weights"], "--gt")
    assert abs(out["fid_kid"]["fid"]) < 1e-6
    md = open(os.path.join(world["same"], "fcn_scores.md")).read()
    assert "| Ground truth |" in md and md.split("| Ground truth |")[1].split("\n")[0].endswith("| – | – |")
    # --compare: FID and KID columns beside the FCN-scores, mean ± std over the seeds of a row
    runs = []
    for seed, shift in ((0, 0.0), (1, 2.0)):
        d = tmp_path / f"photos_seed{seed}"
        d.mkdir()
        report = json.loads(open(os.path.join(world["same"], "fcn_scores.json")).read())
        report["run"] = f"photos_seed{seed}"
        report["fid_kid"].update(fid=report["fid_kid"]["fid"] + shift, kid=0.01 * (seed + 1))
        (d / "fcn_scores.json").write_text(json.dumps(report))
        runs.append(str(d))
    table = fcn_score.main(["--compare", *runs, "--output_dir", str(tmp_path)])
    row = table["rows"]["photos"]["fid_kid"]
    assert row["fid"]["mean"] == pytest.approx(1.0, abs=1e-6) and row["fid"]["std"] == pytest.approx(np.sqrt(2))
    assert row["kid"]["mean"] == pytest.approx(0.015) and row["fid"]["n"] == 2
    md = (tmp_path / "fcn_compare.md").read_text()
    assert "| seg: Class IOU | FID | KID |" in md and "| 1.00 ± 1.41 | 0.0150 ± 0.0071 |" in md


def _bad_results(world, name, size):
    rng = np.random.default_rng(1)
    return write_results(str(world["root"] / name / "val_latest"),
                         {f: rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for f in world["fids"]})


def test_results_of_another_size_than_the_photos_and_too_large_kid_subsets(world):
    args = ("--fid", "--fid_weights", world["weights"])
    with pytest.raises(UserError, match=r"the results in .* are 48x48 but the val photos of .* are 64x64: FID and "
                                        r"KID compare images at one resolution; .*test.py --crop_size 64"):
        run(world, _bad_results(world, "small", 48), *args)
    with pytest.raises(UserError, match=r"--kid_subset_size 5: it must be between 2 and the number of frames \(4\)"):
        run(world, world["results"], *args, "--kid_subset_size", "5")


def test_weights_that_are_missing_or_not_the_inceptions_are_one_line(world, tmp_path):
    url = fid.weights_url()
    assert url.endswith("weights-inception-2015-12-05-6726825d.pth")
    with pytest.raises(UserError, match=rf"--fid_weights {tmp_path}/nope.pth does not exist; on a connected machine "
                                        rf"download {url} .* --fid_weights PATH"):
        fid.resolve_weights(str(tmp_path / "nope.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match=r"junk.pth is not a PyTorch weights file \(.*\); on a connected machine"):
        fid.load_inception(str(junk))
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(UserError, match=r"other.pth does not hold the FID Inception's weights \(Missing key\(s\)"):
        fid.load_inception(str(other))
    pickled = tmp_path / "pickled.pth"
    torch.save({"weights": UserError("code, not tensors")}, pickled)      # refused by weights_only
    with pytest.raises(UserError, match=r"pickled.pth is not a PyTorch weights file"):
        fid.load_inception(str(pickled))
    with pytest.raises(UserError, match="--fid_weights and --kid_subset_size go with --fid"):
        run(world, world["results"], "--fid_weights", world["weights"])


def test_download_goes_to_torch_hubs_cache_and_offline_is_one_line(world, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = fid.cached_weights_path()
    assert cached == str(tmp_path / "torch" / "hub" / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth")
    calls = []

    def offline(url, dst, *args, **kwargs):
        calls.append((url, dst))
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(UserError) as err:
        fid.resolve_weights(None, log=lambda *_: None)
    msg = str(err.value)
    assert "\n" not in msg and calls == [(fid.weights_url(), cached)]
    assert msg.startswith("the FID Inception weights cannot be downloaded from here (URLError")
    assert f"download {fid.weights_url()}" in msg and "--fid_weights PATH" in msg

    def download(url, dst, *args, **kwargs):       # the network, stood in for by a copy
        calls.append((url, dst))
        shutil.copyfile(world["weights"], dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    assert fid.resolve_weights(None, log=lambda *_: None) == cached and len(calls) == 2
    assert fid.resolve_weights(None, log=lambda *_: None) == cached and len(calls) == 2   # cached: no download
