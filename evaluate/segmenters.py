"""Segmenters enter through `smp.from_pretrained` only: an smp hub id or a `save_pretrained` folder.

    seg = load_segmenter("smp-hub/segformer-b0-512x1024-city-160k", device="cuda")
    seg = load_segmenter("checkpoints/segmenters/synthcity_256px")        # local folder, works offline
    prediction = seg.predict(images_uint8, seg.eval_size(label_size))  # [N, H, W] int64

Preprocessing comes from the checkpoint's own config where it has one:
  - `albumentations_config_eval.json` (what smp-hub checkpoints carry, written by albumentations'
    `Compose.save_pretrained`): its Resize gives the native size, its Normalize the mean/std;
  - `segmenter.json` (what evaluate/train_segmenter.py writes beside it): class names and native size;
  - otherwise ImageNet mean/std, and the label size as the evaluation size.
How a segmenter is evaluated (sizes, sliding windows, the means) is its protocol's business
(evaluate/protocols.py): the smp-hub Cityscapes SegFormers, recognised by their repo's name (so a
local copy made with `hf download <id> --local-dir <name>` keeps it), get NVlabs' official test
configs there; the others are evaluated at `eval_size`.

Images are resized bilinearly (antialiased) on the device, labels by nearest neighbour; logits
that come out at another size are resized bilinearly to the labels' before the argmax.
"""
import dataclasses
import json
import os

import torch
import torch.nn.functional as F
from safetensors import SafetensorError

from evaluate.digests import is_local
from pix2pix_tr.errors import UserError

CITYSCAPES_DEFAULTS = ("smp-hub/segformer-b0-512x1024-city-160k", "smp-hub/segformer-b5-1024x1024-city-160k")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ALBUMENTATIONS_FILE = "albumentations_config_eval.json"
SEGMENTER_FILE = "segmenter.json"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"        # what save_pretrained writes and from_pretrained reads


@dataclasses.dataclass
class Preprocessing:
    """What the checkpoint expects: mean/std of pixels in [0, 1], and its native (H, W) if known."""

    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    native_size: tuple = None
    classes: list = None
    source: str = "ImageNet defaults"


class Segmenter:
    """An smp model on a device with its preprocessing; `predict` never leaves the device."""

    def __init__(self, name, model, preprocessing, device):
        self.name = name
        self.model = model.eval().to(device)
        # channels_last: measured 1.5x faster convolutions on CPU (oneDNN's native layout)
        self.memory_format = torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.preprocessing = preprocessing
        self.device = torch.device(device)
        self.mean = torch.tensor(preprocessing.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocessing.std, device=device).view(1, 3, 1, 1)
        self.output_stride = getattr(getattr(model, "encoder", None), "output_stride", 1) \
            if getattr(model, "requires_divisible_input_shape", False) else 1

    @property
    def short_name(self):
        return os.path.basename(os.path.normpath(self.name))

    def eval_size(self, label_size, override=None):
        """--eval_size if given, else the native size, else the label size; checked against the
        model's output stride."""
        size = tuple(override or self.preprocessing.native_size or label_size)
        if any(s % self.output_stride for s in size):
            raise UserError(f"evaluation size {size[0]}x{size[1]} is not divisible by the output stride "
                            f"{self.output_stride} of segmenter {self.name}; pass --eval_size with "
                            f"multiples of {self.output_stride}")
        return size

    def normalize(self, images, size):
        """uint8 [N, 3, h, w] -> float [N, 3, H, W]: resized bilinearly, normalised."""
        return normalize_images(images, size, self.mean, self.std).contiguous(memory_format=self.memory_format)

    @torch.no_grad()
    def predict(self, images, size):
        """uint8 images [N, 3, h, w] on the device -> predicted classes [N, H, W] (int64)."""
        logits = self.model(self.normalize(images, size))
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits.argmax(1)

    def num_outputs(self):
        config = getattr(self.model, "config", None) or {}
        return config.get("classes")


def normalize_images(images, size, mean, std):
    """uint8 [N, 3, h, w] -> float [N, 3, H, W] resized bilinearly (antialiased when shrinking),
    (x/255 - mean)/std; mean and std broadcastable tensors [1, 3, 1, 1]. Training and evaluation
    share it. (Antialiasing changes nothing when enlarging but takes a slower kernel: skipped then.)"""
    x = images.to(torch.float32, copy=True)     # a fresh tensor: normalised in place below
    if tuple(x.shape[-2:]) != tuple(size):
        shrinks = any(s < h for s, h in zip(size, x.shape[-2:]))
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrinks)
    return x.sub_(mean * 255).div_(std * 255)


def resize_labels(labels, size):
    """Integer labels [N, H, W] -> [N, *size] of the same dtype, nearest neighbour (as PIL's
    NEAREST). uint8 labels are resized as they are on a CPU (no float copy)."""
    if tuple(labels.shape[-2:]) != tuple(size):
        if labels.dtype == torch.uint8 and labels.device.type == "cpu":
            return F.interpolate(labels[:, None], size=tuple(size), mode="nearest-exact")[:, 0]
        labels = F.interpolate(labels[:, None].float(), size=tuple(size), mode="nearest-exact")[:, 0].to(labels.dtype)
    return labels


def load_segmenter(spec, *, device="cpu"):
    """The segmenter named by `spec` (hub id or save_pretrained folder) on `device`, or a
    one-line UserError saying what is wrong and what to do."""
    import segmentation_models_pytorch as smp

    if os.path.isdir(spec):
        if not os.path.isfile(os.path.join(spec, CONFIG_FILE)):
            raise UserError(f"{spec} holds no segmenter (no {CONFIG_FILE}): pass a folder written by "
                            "model.save_pretrained() or evaluate/train_segmenter.py, or an smp hub id")
        try:
            model = smp.from_pretrained(spec)
        except SafetensorError as err:          # the weights file is cut short, empty or not safetensors
            raise UserError(f"{os.path.join(spec, WEIGHTS_FILE)} is not a readable weights file "
                            f"({_first_line(err)}): it is truncated or damaged; copy the segmenter again "
                            "or write it again with model.save_pretrained()") from None
        except (OSError, KeyError, ValueError, RuntimeError, AttributeError, TypeError) as err:
            raise UserError(f"{spec} is not a complete smp segmenter ({type(err).__name__}: "
                            f"{_first_line(err)}); write it again with model.save_pretrained()") from None
        return Segmenter(spec, model, read_preprocessing(spec, _local_reader(spec)), device)
    if is_local(spec):
        raise UserError(f"segmenter folder {spec} does not exist (pass a folder written by "
                        "save_pretrained, or an smp hub id like smp-hub/<name>)")
    try:
        model = smp.from_pretrained(spec)
    except Exception as err:  # noqa: BLE001 - every hub failure becomes the one line below
        raise UserError(_hub_failure(spec, err)) from None
    return Segmenter(spec, model, read_preprocessing(spec, _hub_reader(spec)), device)


def _hub_failure(spec, err):
    from huggingface_hub import errors

    name = spec.split("/")[-1]
    if isinstance(err, errors.RepositoryNotFoundError):
        return f"segmenter {spec}: no such model on the hub; check the id (e.g. {CITYSCAPES_DEFAULTS[0]})"
    return (f"segmenter {spec} cannot be downloaded: the model hub is unreachable from here "
            f"({type(err).__name__}). Use a local copy instead: on a connected machine run "
            f"`hf download {spec} --local-dir {name}` (huggingface_hub's CLI), copy the folder here "
            f"and pass --segmenter path/to/{name}")


def _first_line(err):
    return (str(err).strip().splitlines() or [""])[0][:200]


def _local_reader(folder):
    def read(filename):
        path = os.path.join(folder, filename)
        return path if os.path.isfile(path) else None
    return read


def _hub_reader(repo_id):
    def read(filename):
        from huggingface_hub import errors, hf_hub_download

        try:
            return hf_hub_download(repo_id, filename=filename)
        except errors.EntryNotFoundError:
            return None
    return read


def read_preprocessing(spec, read):
    """Preprocessing from the checkpoint's files (`read(filename)` -> local path or None)."""
    pre = Preprocessing()
    albu = read(ALBUMENTATIONS_FILE)
    if albu:
        _apply_albumentations(pre, albu)
    own = read(SEGMENTER_FILE)
    if own:
        with open(own, encoding="utf-8") as f:
            info = json.load(f)
        pre.classes = info.get("classes")
        if info.get("native_size"):
            pre.native_size = tuple(info["native_size"])
    return pre


def _apply_albumentations(pre, path):
    """Read Resize and Normalize of an albumentations Compose saved with save_pretrained."""
    with open(path, encoding="utf-8") as f:
        transforms = json.load(f).get("transform", {}).get("transforms", [])
    for t in transforms:
        kind = t.get("__class_fullname__", "").split(".")[-1]
        if kind == "Resize":
            pre.native_size = (int(t["height"]), int(t["width"]))
        elif kind == "Normalize":
            if t.get("normalization", "standard") != "standard":
                raise UserError(f"{path}: Normalize(normalization={t['normalization']!r}) is not "
                                "supported; only mean/std normalisation")
            scale = float(t.get("max_pixel_value", 255.0)) / 255.0
            pre.mean = tuple(float(m) * scale for m in t.get("mean", IMAGENET_MEAN))
            pre.std = tuple(float(s) * scale for s in t.get("std", IMAGENET_STD))
            pre.source = path
    return pre


def albumentations_config(native_size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The albumentations_config_eval.json that `_apply_albumentations` reads, in the format
    albumentations' save_pretrained writes (so albumentations users can load it too)."""
    return {"__version__": "1.4.24", "transform": {
        "__class_fullname__": "Compose", "p": 1.0, "transforms": [
            {"__class_fullname__": "Resize", "height": int(native_size[0]), "width": int(native_size[1]),
             "interpolation": 1, "p": 1.0},
            {"__class_fullname__": "Normalize", "mean": list(mean), "std": list(std),
             "max_pixel_value": 255.0, "normalization": "standard", "p": 1.0}]}}
