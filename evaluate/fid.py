"""FID and KID of synthesized photos against the real photos of the same split, by torchmetrics.

torchmetrics' `FrechetInceptionDistance` and `KernelInceptionDistance` (subsets drawn from a fixed
seed) on the pool3 features of torch-fidelity's port of the TensorFlow FID Inception, resized to
299x299 as TensorFlow 1 did (`antialias=False`). One Inception pass per image set serves both.
docs/evaluate.md says why these libraries, and how the figures relate to published ones.
"""
import collections
import os
import urllib.error
import warnings

import torch

from evaluate import frames
from evaluate.digests import file_sha256
from evaluate.segmenters import first_line
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import distributed

FEATURES = 2048                         # pool3, the FID layer
EXTRACTOR = "inception-v3-compat"       # torch-fidelity's name for the TF FID Inception
KID_SUBSETS = 100                       # torchmetrics' (and Binkowski et al.'s) defaults
KID_MAX_SUBSET_SIZE = 1000
KID_SEED = 2020                         # seeds the draw of KID's subsets: the same ones on every run
MIN_FRAMES = 4                          # 2 for a covariance; KID subsets of at least 2 from half the frames

# Published FID of labels->photos on Cityscapes val (500 frames) at the resolution of our prepared
# pairs (256x256), computed against the real val photos: the rows fcn_scores.md prints beside a
# cityscapes 256x256 run. (SPADE's, OASIS' and GauGAN's figures are at 256x512: docs/evaluate.md.)
PUBLISHED = {("cityscapes", (256, 256)): (("pix2pix, GAN Compression's model (published)", {"fid": 61.50}),)}


def weights_url():
    """The URL torchmetrics' Inception (torch-fidelity's) downloads its weights from."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return URL_INCEPTION_V3


def cached_weights_path():
    """Where torch.hub keeps the downloaded file (torchmetrics' own download lands there too)."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights_url()))


def how_to_get_weights():
    return (f"on a connected machine download {weights_url()} (or pytorch-fid's pt_inception-2015-12-05-"
            "6726825d.pth) and pass its path with --fid_weights PATH")


def resolve_weights(path=None, log=print):
    """The local file of Inception weights: `path` as given, else torch.hub's cached copy of the
    library's URL, downloaded now if absent. A UserError line when neither is possible."""
    if path:
        if not os.path.isfile(path):
            raise UserError(f"--fid_weights {path} does not exist; {how_to_get_weights()}")
        return path
    cached = cached_weights_path()
    if os.path.isfile(cached):
        return cached
    url = weights_url()
    log(f"FID: downloading the Inception weights (~91 MB) from {url} to {cached} (once)")
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        torch.hub.download_url_to_file(url, cached, progress=distributed.is_main_process())  # temp file + rename
    except (urllib.error.URLError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"the FID Inception weights cannot be downloaded from here ({type(err).__name__}: "
                        f"{first_line(err)}); {how_to_get_weights()}") from None
    return cached


def load_inception(path, *, device="cpu"):
    """torchmetrics' InceptionV3 feature extractor (pool3: [N, 2048] of uint8 [N, 3, H, W]) with the
    weights in `path` and TensorFlow 1's resize, on `device`, in eval mode; a UserError naming the file
    if it is not those weights."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)   # plain tensors only, or refused
    except Exception as err:  # noqa: BLE001 - pickle, zip and weights_only errors all mean "not weights"
        raise UserError(f"{path} is not a PyTorch weights file ({type(err).__name__}: {first_line(err)}); "
                        f"{how_to_get_weights()}") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors; {how_to_get_weights()}")
    del state
    try:
        extractor = NoTrainInceptionV3(name=EXTRACTOR, features_list=[str(FEATURES)],
                                       feature_extractor_weights_path=path, antialias=False)
    except RuntimeError as err:      # load_state_dict: missing / unexpected keys, other shapes
        detail = " ".join(str(err).split("\n", 1)[-1].split())       # the keys or shapes, after the title
        raise UserError(f"{path} does not hold the FID Inception's weights ({detail[:160]}); "
                        f"{how_to_get_weights()}") from None
    return extractor.to(device).eval()


@torch.no_grad()
def features(dataset, extractor, *, device, batch_size=32, num_workers=0, desc="Inception features"):
    """[N, 2048] float64 CPU tensor of pool3 features, row i for dataset[i] (its "image": uint8
    [3, H, W]). Under torchrun each rank extracts its share and the rows are summed over ranks
    (each row is non-zero on one rank only), so every rank returns all of them."""
    batches = frames.device_batches(dataset, device=device, batch_size=batch_size, num_workers=num_workers, desc=desc)
    chunks = [extractor(batch["image"]).to(torch.float64) for batch in batches]
    out = torch.zeros(len(dataset), FEATURES, dtype=torch.float64, device=device)
    if chunks:
        out[torch.tensor(list(distributed.shard_range(len(dataset))), device=device)] = torch.cat(chunks)
    return distributed.all_reduce_sum(out).cpu()


def check_counts(num_results, num_real, kid_subset_size=None):
    """KID's subset size for these numbers of frames; a UserError if there are too few frames or the
    subset size does not fit."""
    n = min(num_results, num_real)
    if n < MIN_FRAMES:
        raise UserError(f"FID and KID need at least {MIN_FRAMES} frames on each side, got {num_results} results "
                        f"and {num_real} real photos")
    # torchmetrics' 1000, or half the frames: subsets of all N would all be the same set (std 0)
    size = kid_subset_size or max(2, min(KID_MAX_SUBSET_SIZE, n // 2))
    if not 2 <= size <= n:
        raise UserError(f"--kid_subset_size {size}: it must be between 2 and the number of frames ({n})")
    return size


class Precomputed(torch.nn.Module):
    """The metrics' `feature` network when the features are already computed: passes them on."""

    num_features = FEATURES

    def forward(self, features):
        return features


def fid_kid(fake, real, *, kid_subsets=KID_SUBSETS, kid_subset_size=None, seed=KID_SEED):
    """FID and KID of two [N, D] feature tensors, by torchmetrics on the CPU in float64. KID's subset
    size defaults to `check_counts`'; its subsets are drawn from the CPU generator seeded with
    `seed`, the caller's random state left as it was."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    size = check_counts(len(fake), len(real), kid_subset_size)
    fake, real = fake.to("cpu", torch.float64), real.to("cpu", torch.float64)
    common = dict(feature=Precomputed(), sync_on_compute=False)   # every rank already holds all rows
    frechet = FrechetInceptionDistance(**common)
    with warnings.catch_warnings():       # "KID will save all extracted features in buffer": 2 x N x 2048
        warnings.simplefilter("ignore", UserWarning)
        kernel = KernelInceptionDistance(subsets=kid_subsets, subset_size=size, **common)
    for metric in (frechet, kernel):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):       # KID draws its subsets with torch.randperm on the CPU
        torch.random.default_generator.manual_seed(seed)
        kid, kid_std = kernel.compute()
    return {"fid": float(frechet.compute()), "kid": float(kid), "kid_std": float(kid_std),
            "kid_subsets": int(kid_subsets), "kid_subset_size": int(size), "kid_seed": int(seed),
            "num_results": len(fake), "num_real": len(real)}


def protocol(dataset_name, size, weights_path):
    """How the figures were made and which published ones they stand beside (the report prints it)."""
    import torch_fidelity
    import torchmetrics

    published = PUBLISHED.get((dataset_name, tuple(size)), ())
    comparable = (f"GAN Compression's pix2pix Cityscapes FID ({published[0][1]['fid']:.2f}: val, 256x256, real "
                  "photos resized as here, but pytorch-fid's PyTorch bilinear resize to 299); not SPADE's, OASIS' "
                  "or GauGAN's (256x512)" if published else "runs of this project on the same split and resolution")
    return {
        "name": f"torchmetrics {torchmetrics.__version__}, torch-fidelity {torch_fidelity.__version__}'s Inception",
        "description": (f"pool3 features (2048) of the TF Inception ({EXTRACTOR}), each image resized to "
                        "299x299 by TensorFlow 1's bilinear resize; results against the real photos of the "
                        f"same split at {size[0]}x{size[1]}; KID: unbiased MMD^2, cubic polynomial kernel, "
                        "mean and std over random subsets"),
        "weights": os.path.basename(weights_path),
        "comparable_with": comparable,
        "published": [list(row) for row in published],
    }


# What FID compares, checked by `prepare`: results and real photos (frames.Images), their (H, W), the weights file.
Inputs = collections.namedtuple("Inputs", "results photos size weights")


def prepare(result_ids, results, results_size, labels, *, results_dir, dataroot, phase, meta, weights=None,
            kid_subset_size=None, log=print):
    """Check everything FID needs before any image is processed, given the results fcn_score matched
    to the labels {frame_id: path} (`result_ids` of `results`, all `results_size`): the photo halves of
    the split's pairs match the labels too (frames.py's rules and errors) and are that size; the
    weights are local (downloaded now if they must be)."""
    photos = frames.photo_paths(dataroot, phase)
    photo_ids = frames.match_frames(photos, labels, f"{phase} pairs")
    h, pair_w = frames.check_one_size([photos[f] for f in photo_ids], f"the {phase} pairs of {dataroot}")
    if tuple(results_size) != (h, pair_w // 2):
        raise UserError(f"the results in {results_dir} are {results_size[1]}x{results_size[0]} but the {phase} "
                        f"photos of {dataroot} are {pair_w // 2}x{h}: FID and KID compare images at one "
                        f"resolution; synthesize at the dataset's size (test.py --crop_size {pair_w // 2}) or "
                        "evaluate against a dataset prepared at the results' size")
    check_counts(len(result_ids), len(photo_ids), kid_subset_size)
    return Inputs(frames.Images(result_ids, results), frames.Images(photo_ids, photos, frames.photo_half(meta)),
                  results_size, resolve_weights(weights, log=log))


def evaluate(inputs, *, dataset_name, device="cpu", batch_size=32, num_workers=0, kid_subsets=KID_SUBSETS,
             kid_subset_size=None):
    """The `fid_kid` section of fcn_scores.json for `prepare`'s inputs."""
    extractor = load_inception(inputs.weights, device=device)
    common = dict(device=device, batch_size=batch_size, num_workers=num_workers)
    fake = features(inputs.results, extractor, desc=f"FID: {len(inputs.results)} results", **common)
    real = features(inputs.photos, extractor, desc=f"FID: {len(inputs.photos)} real photos", **common)
    out = fid_kid(fake, real, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size)
    out.update(size=list(inputs.size), weights_sha256=file_sha256(inputs.weights),
               protocol=protocol(dataset_name, inputs.size, inputs.weights))
    return out
