"""smp segmenters, entering through `smp.from_pretrained` only: an smp hub id or a `save_pretrained` folder.

Preprocessing comes from the checkpoint's own files: `albumentations_config_eval.json` (smp-hub's:
Resize = native size, Normalize = mean/std) and `segmenter.json` (evaluate/train_segmenter.py's:
class names, native size); otherwise ImageNet mean/std and the label size. Sizes, windows and class
means are the protocol's business (evaluate/protocols.py).
"""
import dataclasses
import json
import os

import torch
import torch.nn.functional as F
from safetensors import SafetensorError

from evaluate.digests import is_local
from pix2pix_tr.errors import UserError
from pix2pix_tr.run.checkpoint import NonFiniteWeights, check_finite

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


class Segmenter:
    """An smp model on a device with its preprocessing; `predict` never leaves the device."""

    def __init__(self, name, model, preprocessing, device):
        self.name, self.preprocessing = name, preprocessing
        self.memory_format = memory_format(device)
        self.model = model.eval().to(device, memory_format=self.memory_format)
        self.mean = torch.tensor(preprocessing.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(preprocessing.std, device=device).view(1, 3, 1, 1)
        self.output_stride = getattr(getattr(model, "encoder", None), "output_stride", 1) \
            if getattr(model, "requires_divisible_input_shape", False) else 1

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


def memory_format(device):
    """channels_last on a CPU: oneDNN's native layout, faster there (docs/evaluate.md); CUDA keeps NCHW."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def normalize_images(images, size, mean, std, antialias=True):
    """uint8 [N, 3, h, w] -> float [N, 3, H, W] resized bilinearly, (x/255 - mean)/std; mean and std
    broadcastable tensors [1, 3, 1, 1]. Training and evaluation share it. `antialias`: when shrinking
    (enlarging it changes nothing but takes a slower kernel); mmcv's resize never antialiases."""
    x = images.to(torch.float32, copy=True)     # a fresh tensor: normalised in place below
    if tuple(x.shape[-2:]) != tuple(size):
        shrinks = antialias and any(s < h for s, h in zip(size, x.shape[-2:]))
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

    local = os.path.isdir(spec)
    if local and not os.path.isfile(os.path.join(spec, CONFIG_FILE)):
        raise UserError(f"{spec} holds no segmenter (no {CONFIG_FILE}): pass a folder written by "
                        "model.save_pretrained() or evaluate/train_segmenter.py, or an smp hub id")
    if not local and is_local(spec):
        raise UserError(f"segmenter folder {spec} does not exist (pass a folder written by "
                        "save_pretrained, or an smp hub id like smp-hub/<name>)")
    # a local folder's failures are its files'; every hub failure is the hub's
    failures = (SafetensorError, OSError, KeyError, ValueError, RuntimeError, AttributeError, TypeError) \
        if local else Exception
    try:
        model = smp.from_pretrained(spec)
    except failures as err:
        raise UserError(_load_failure(spec, err, local)) from None
    try:
        check_finite(model.state_dict(), f"segmenter {spec}")
    except NonFiniteWeights as err:
        raise UserError(f"{err}: it cannot judge; train it again with a lower --lr") from None
    return Segmenter(spec, model, read_preprocessing(spec, local), device)


def _load_failure(spec, err, local):
    if not local:
        from huggingface_hub import errors

        if isinstance(err, errors.RepositoryNotFoundError):
            return (f"segmenter {spec}: no such model on the hub; check the id "
                    "(e.g. smp-hub/segformer-b0-512x1024-city-160k)")
        name = spec.split("/")[-1]
        return (f"segmenter {spec} cannot be downloaded: the model hub is unreachable from here "
                f"({type(err).__name__}). Use a local copy instead: on a connected machine run "
                f"`hf download {spec} --local-dir {name}` (huggingface_hub's CLI), copy the folder here "
                f"and pass --segmenter path/to/{name}")
    if isinstance(err, SafetensorError):        # the weights file is cut short, empty or not safetensors
        return (f"{os.path.join(spec, WEIGHTS_FILE)} is not a readable weights file ({first_line(err)}): it "
                "is truncated or damaged; copy the segmenter again or write it again with model.save_pretrained()")
    return (f"{spec} is not a complete smp segmenter ({type(err).__name__}: {first_line(err)}); write it "
            "again with model.save_pretrained()")


def first_line(err):
    return (str(err).strip().splitlines() or [""])[0][:200]


def _checkpoint_json(spec, filename, local):
    """One of the checkpoint's JSON files as a dict ({} where it has none)."""
    if local:
        path = os.path.join(spec, filename)
        if not os.path.isfile(path):
            return {}
    else:
        from huggingface_hub import errors, hf_hub_download

        try:
            path = hf_hub_download(spec, filename=filename)
        except errors.EntryNotFoundError:
            return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_preprocessing(spec, local):
    """Preprocessing from the checkpoint's albumentations_config_eval.json and segmenter.json."""
    pre = Preprocessing()
    albu = _checkpoint_json(spec, ALBUMENTATIONS_FILE, local)        # albumentations' Compose.save_pretrained
    for t in albu.get("transform", {}).get("transforms", []):
        kind = t.get("__class_fullname__", "").split(".")[-1]
        if kind == "Resize":
            pre.native_size = (int(t["height"]), int(t["width"]))
        elif kind == "Normalize":
            if t.get("normalization", "standard") != "standard":
                raise UserError(f"{spec}'s {ALBUMENTATIONS_FILE}: Normalize(normalization={t['normalization']!r}) "
                                "is not supported; only mean/std normalisation")
            scale = float(t.get("max_pixel_value", 255.0)) / 255.0
            pre.mean = tuple(float(m) * scale for m in t.get("mean", IMAGENET_MEAN))
            pre.std = tuple(float(s) * scale for s in t.get("std", IMAGENET_STD))
    own = _checkpoint_json(spec, SEGMENTER_FILE, local)
    pre.classes = own.get("classes")
    if own.get("native_size"):
        pre.native_size = tuple(own["native_size"])
    return pre


def albumentations_config(native_size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """The albumentations_config_eval.json that `read_preprocessing` reads, in the format
    albumentations' save_pretrained writes (so albumentations users can load it too)."""
    return {"__version__": "1.4.24", "transform": {
        "__class_fullname__": "Compose", "p": 1.0, "transforms": [
            {"__class_fullname__": "Resize", "height": int(native_size[0]), "width": int(native_size[1]),
             "interpolation": 1, "p": 1.0},
            {"__class_fullname__": "Normalize", "mean": list(mean), "std": list(std),
             "max_pixel_value": 255.0, "normalization": "standard", "p": 1.0}]}}
