"""Evaluation protocols: how each segmenter turns a batch into predictions and its confusion matrix
into figures, so that a row is comparable with the figures published under the same protocol.

    `--segmenter X.caffemodel`           Pix2PixFCN8s      pix2pix's eval_cityscapes, step for step
    smp-hub Cityscapes SegFormer ids     SegFormerOfficial NVlabs' test configs (whole / sliding window)
    any other smp segmenter              NativeSize        this project's: resized to its native size

pix2pix's protocol (scripts/eval_cityscapes/evaluate.py, cityscapes.py, util.py): trainId labels at
their own resolution (2048x1024 for Cityscapes), never resized; each result upsampled to its label's
resolution with PIL's bilinear filter to uint8 (what scipy.misc.imresize did); RGB -> BGR minus the
BGR mean (72.78044, 83.21195, 73.45286), unscaled; argmax over the FCN-8s's 20 outputs, where index
19 is no Cityscapes class; one confusion matrix over all frames, label 255 ignored; pixel accuracy =
trace / total, class accuracy and IoU averaged over all 19 classes with an absent class counting 0
(get_scores' +1e-12 denominators). The ground-truth row (`--gt`) resizes each real photo to 256x256
first (pix2pix's README: "resize the original Cityscapes images to 256x256 before running the
evaluation code"), then takes the same path. A pixel predicted 19 counts here as a miss for its
label class and a false positive for no class. pix2pix's `fast_hist(a, b, 19)` bins it at
19*a + 19, i.e. as label a+1 predicted as road, and drops a whole frame from the matrix when a
bicycle pixel (a = 18) is predicted 19 (its bincount then has 362 bins). How often the released
weights predict 19 on Cityscapes, and so how much this moved pix2pix's own figures, is not measured
here (these machines have neither Cityscapes nor the file).

SegFormers (NVlabs/SegFormer local_configs, mmseg 0.13's `whole_inference`/`slide_inference`): the
frame is resized keeping its aspect ratio to fit the config's test img_scale (mmcv's rule, bilinear),
normalised with the checkpoint's mean/std, segmented whole (b0-512x1024, b0-640x1280) or by a sliding
window whose overlapping logits are averaged (b0-768x768: 768 window, stride 768 over 768x1536;
b0-1024x1024 and b1-b5: 1024 window, stride 768 over 1024x2048), and the logits are resized
bilinearly to the label's full resolution before the argmax; labels are never resized. The means are
mmseg's: IoU over classes present in the labels or the predictions, accuracy over classes present in
the labels. A result image stands for its whole frame: the frame's size is the label's.

Another protocol is an `Evaluator` subclass (evaluate, protocol, averaging, and needs_fcn8s_input if
it wants pix2pix's upsampled input from the workers), chosen for its segmenters in `load`.
"""
import dataclasses
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from evaluate import fcn8s, segmenters
from evaluate.metrics import scores_from_matrix
from pix2pix_tr.errors import UserError

PIX2PIX_GT_SIZE = (256, 256)       # pix2pix scores real photos after resizing them to this
FCN8S_INPUT = "image_fcn8s"        # batch key: the image upsampled to its label with PIL (workers)

# pix2pix (Isola et al., CVPR 2017), Table 2: FCN-scores for Cityscapes labels->photos, 256x256.
PIX2PIX_PUBLISHED = (
    ("pix2pix L1+cGAN (published)", {"pixel_acc": 0.66, "class_acc": 0.23, "mean_iou": 0.17}),
    ("Ground truth (pix2pix, published)", {"pixel_acc": 0.80, "class_acc": 0.26, "mean_iou": 0.21}),
)

AVERAGING = {
    "pix2pix": "class means over all 19 classes, an absent class counting 0 (pix2pix's get_scores)",
    "mmseg": "IoU averaged over classes in the labels or the predictions, accuracy over classes in the "
             "labels (mmseg's nanmean)",
    "present": "class means over the classes present in the labels (absent ones listed)",
}


# --- the figures -----------------------------------------------------------------------------------
def scores(matrix, class_names, averaging):
    """Scores of a K x (K+1) confusion matrix (nested lists) under one of AVERAGING's rules: the
    per-class figures and pixel accuracy of `metrics.scores_from_matrix`, the two class means by the
    rule."""
    out = scores_from_matrix(matrix, class_names)
    if averaging not in AVERAGING:
        raise ValueError(f"averaging {averaging!r}; one of {sorted(AVERAGING)}")
    out["averaging"] = averaging
    if averaging == "present":
        return out
    k = len(matrix)
    accs, ious = [], []
    for c in range(k):
        tp, n_label = matrix[c][c], sum(matrix[c])
        union = n_label + sum(matrix[i][c] for i in range(k)) - tp
        if averaging == "pix2pix":
            accs.append(tp / n_label if n_label else 0.0)
            ious.append(tp / union if union else 0.0)
        else:
            if n_label:
                accs.append(tp / n_label)
            if union:
                ious.append(tp / union)
    out["class_acc"] = sum(accs) / len(accs) if accs else None
    out["mean_iou"] = sum(ious) / len(ious) if ious else None
    return out


# --- protocols -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SegFormerTest:
    """One NVlabs Cityscapes test config: img_scale (long, short) of mmseg's keep-ratio Resize, and
    the sliding window (crop, stride as (h, w)), or None for whole-image inference."""

    img_scale: tuple
    crop: tuple = None
    stride: tuple = None
    config: str = ""

    def input_size(self, frame_size):
        """mmcv.imrescale's size for a frame (H, W): the largest scale with long edge <= img_scale's
        long and short edge <= its short, rounded half up."""
        h, w = frame_size
        factor = min(max(self.img_scale) / max(h, w), min(self.img_scale) / min(h, w))
        return int(h * factor + 0.5), int(w * factor + 0.5)

    def describe(self):
        mode = (f"sliding {self.crop[0]}x{self.crop[1]} window, stride {self.stride[0]}" if self.crop
                else "whole image")
        return mode


_CITY_1024 = dict(img_scale=(2048, 1024), crop=(1024, 1024), stride=(768, 768))
SEGFORMER_CITYSCAPES = {           # smp-hub repo name -> NVlabs' test config (local_configs/segformer/)
    "segformer-b0-512x1024-city-160k": SegFormerTest((1024, 512), config="B0/segformer.b0.512x1024.city.160k.py"),
    "segformer-b0-640x1280-city-160k": SegFormerTest((1280, 640), config="B0/segformer.b0.640x1280.city.160k.py"),
    "segformer-b0-768x768-city-160k": SegFormerTest((1536, 768), crop=(768, 768), stride=(768, 768),
                                                    config="B0/segformer.b0.768x768.city.160k.py"),
    "segformer-b0-1024x1024-city-160k": SegFormerTest(**_CITY_1024, config="B0/segformer.b0.1024x1024.city.160k.py"),
    **{f"segformer-b{i}-1024x1024-city-160k": SegFormerTest(**_CITY_1024,
                                                            config=f"B{i}/segformer.b{i}.1024x1024.city.160k.py")
       for i in range(1, 6)},
}


def slide_windows(size, crop, stride):
    """mmseg's slide_inference windows over an image of `size` (H, W): [(y1, y2, x1, x2)]; the last
    window in each direction is pulled back to end at the border; a crop larger than the image
    shrinks to it."""
    (h, w), (hc, wc), (hs, ws) = size, crop, stride
    rows = max(h - hc + hs - 1, 0) // hs + 1
    cols = max(w - wc + ws - 1, 0) // ws + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * hs + hc, h), min(c * ws + wc, w)
            windows.append((max(y2 - hc, 0), y2, max(x2 - wc, 0), x2))
    return windows


def slide_logits(model, x, crop, stride):
    """Logits of `model` over x [N, C, H, W] by mmseg's sliding window: each window's logits (resized
    to the window if the model returns another size) are added into place and divided by the number
    of windows covering each pixel."""
    n, _, h, w = x.shape
    out, count = None, x.new_zeros((1, 1, h, w))
    for y1, y2, x1, x2 in slide_windows((h, w), crop, stride):
        logits = model(x[:, :, y1:y2, x1:x2])
        if tuple(logits.shape[-2:]) != (y2 - y1, x2 - x1):
            logits = F.interpolate(logits, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        if out is None:
            out = x.new_zeros((n, logits.shape[1], h, w))
        out[:, :, y1:y2, x1:x2] += logits
        count[:, :, y1:y2, x1:x2] += 1
    return out / count


class Evaluator:
    """One segmenter under one protocol. `evaluate(batch)` -> (predictions, labels) of one shape on
    the device, to be counted in a confusion matrix; `scores(matrix, names)` -> the figures."""

    averaging = "present"
    needs_fcn8s_input = False

    def __init__(self, name):
        self.name = name

    @property
    def short_name(self):
        return os.path.basename(os.path.normpath(self.name))

    def scores(self, matrix, class_names):
        return scores(matrix, class_names, self.averaging)

    def protocol(self, label_size):
        """The report's record of the protocol: {name, description, comparable_with, averaging,
        input_size, and "published": [[row label, {metric: value}]] where published figures were made
        under it}."""
        raise NotImplementedError

    def eval_size(self, label_size):
        """Where the predictions are counted (the label's resolution unless resized)."""
        return tuple(label_size)


class Pix2PixFCN8s(Evaluator):
    """pix2pix's Caffe FCN-8s (evaluate/fcn8s.py) under pix2pix's protocol (module docstring)."""

    averaging = "pix2pix"
    needs_fcn8s_input = True

    def __init__(self, name, model, device):
        super().__init__(name)
        self.device = torch.device(device)
        # channels_last on CPU: oneDNN's native layout, measured 12% faster for this network; CUDA keeps NCHW
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)

    @torch.no_grad()
    def logits(self, images_at_label_size):
        x = fcn8s.preprocess(images_at_label_size).contiguous(memory_format=self.memory_format)
        return self.model(x)

    def evaluate(self, batch):
        return self.logits(batch[FCN8S_INPUT]).argmax(1), batch["label"]

    def protocol(self, label_size):
        return {"name": "pix2pix FCN-8s",
                "description": "pix2pix's eval_cityscapes: results upsampled to the labels' resolution "
                               "(PIL bilinear, uint8), BGR minus mean, argmax over 20 outputs (19 = no class), "
                               "one confusion matrix, 255 ignored; real photos resized to 256x256 first",
                "comparable_with": "pix2pix (Isola et al. 2017) Table 2 and the TRAdam paper's FCN-8s table "
                                   "(Cityscapes labels->photos, full val split)",
                "averaging": AVERAGING[self.averaging], "input_size": list(label_size),
                "published": [[label, dict(values)] for label, values in PIX2PIX_PUBLISHED]}


class SegFormerOfficial(Evaluator):
    """An smp-hub Cityscapes SegFormer under NVlabs' test config for it (module docstring)."""

    averaging = "mmseg"

    def __init__(self, segmenter, test):
        super().__init__(segmenter.name)
        self.segmenter, self.test = segmenter, test

    @torch.no_grad()
    def logits(self, images, label_size):
        seg = self.segmenter
        size = self.test.input_size(label_size)
        x = images.to(torch.float32, copy=True)       # normalised in place below
        if tuple(x.shape[-2:]) != size:               # mmcv.imresize: bilinear, no antialiasing
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = x.sub_(seg.mean * 255).div_(seg.std * 255).contiguous(memory_format=seg.memory_format)
        if self.test.crop:
            logits = slide_logits(seg.model, x, self.test.crop, self.test.stride)
        else:
            logits = seg.model(x)
        return F.interpolate(logits, size=tuple(label_size), mode="bilinear", align_corners=False)

    def evaluate(self, batch):
        labels = batch["label"]
        return self.logits(batch["image"], labels.shape[-2:]).argmax(1), labels

    def protocol(self, label_size):
        size = self.test.input_size(label_size)
        return {"name": "SegFormer official",
                "description": f"NVlabs' test config {self.test.config}: resized to {size[0]}x{size[1]}, "
                               f"{self.test.describe()}, logits resized to the labels' resolution",
                "comparable_with": "the SegFormer paper's single-scale Cityscapes val mIoU of this checkpoint "
                                   "when given full-resolution real photos; otherwise other runs under "
                                   "this protocol",
                "averaging": AVERAGING[self.averaging], "input_size": list(size)}


class NativeSize(Evaluator):
    """This project's protocol for its own segmenters: image and labels resized to the segmenter's
    native size (or --eval_size, or the label size), labels by nearest neighbour."""

    def __init__(self, segmenter, size, chosen_by=None):
        super().__init__(segmenter.name)
        self.segmenter, self.size, self.chosen_by = segmenter, tuple(size), chosen_by

    def evaluate(self, batch):
        return (self.segmenter.predict(batch["image"], self.size),
                segmenters.resize_labels(batch["label"], self.size))

    def eval_size(self, label_size):
        return self.size

    def protocol(self, label_size):
        why = self.chosen_by or ("its native size" if self.segmenter.preprocessing.native_size
                                 else "the labels' size")
        return {"name": "native size",
                "description": f"images and labels resized to {self.size[0]}x{self.size[1]} ({why})",
                "comparable_with": "runs of this project scored by the same segmenter; no published figures",
                "averaging": AVERAGING[self.averaging], "input_size": list(self.size)}


# --- loading ---------------------------------------------------------------------------------------
def is_caffemodel(spec):
    return spec.lower().endswith(".caffemodel")


def load(spec, *, device, label_size, eval_size=None, cache_dir=fcn8s.DEFAULT_CACHE_DIR, log=print):
    """The Evaluator for `spec`: a .caffemodel path, an smp hub id or a save_pretrained folder."""
    if is_caffemodel(spec):
        if eval_size:
            raise UserError(f"--eval_size does not apply to {spec}: pix2pix's protocol scores at the "
                            "labels' own resolution; leave --eval_size out")
        return Pix2PixFCN8s(spec, fcn8s.load_fcn8s(spec, device=device, cache_dir=cache_dir, log=log), device)
    seg = segmenters.load_segmenter(spec, device=device)
    if eval_size:
        return NativeSize(seg, seg.eval_size(label_size, eval_size), chosen_by="--eval_size; no official protocol")
    test = SEGFORMER_CITYSCAPES.get(seg.short_name)
    if test is not None:
        size = test.input_size(label_size)
        windows = slide_windows(size, test.crop, test.stride) if test.crop else [(0, size[0], 0, size[1])]
        if any((y2 - y1) % seg.output_stride or (x2 - x1) % seg.output_stride for y1, y2, x1, x2 in windows):
            raise UserError(f"{spec}'s official protocol resizes {label_size[0]}x{label_size[1]} frames to "
                            f"{size[0]}x{size[1]}, which the segmenter cannot take (sides must be multiples of "
                            f"{seg.output_stride}); it is made for Cityscapes' 1024x2048 frames: pass "
                            "--eval_size H W (this project's native-size protocol) for these labels")
        return SegFormerOfficial(seg, test)
    native = seg.preprocessing.native_size
    if native and label_size and _aspect_differs(native, label_size):
        log(f"note: {spec} is evaluated at its native {native[0]}x{native[1]}, another aspect ratio than the "
            f"labels' {label_size[0]}x{label_size[1]} (squashed); an smp-hub Cityscapes SegFormer gets its "
            "official protocol when its folder keeps the hub repo's name")
    return NativeSize(seg, seg.eval_size(label_size))


def _aspect_differs(a, b):
    return abs(a[0] / a[1] - b[0] / b[1]) > 0.01 * (b[0] / b[1])


def check_dataset(evaluator, meta):
    """pix2pix's FCN-8s scores the 19 Cityscapes classes; a dataset with other classes is refused."""
    if isinstance(evaluator, Pix2PixFCN8s):
        from data.layout import cityscapes_classes

        if list(meta.classes) != cityscapes_classes()[0]:
            raise UserError(f"{evaluator.name} scores the 19 Cityscapes classes, but dataset {meta.name} has "
                            f"{meta.num_classes} other classes; use it on Cityscapes (or SynthCity) labels")


# --- pix2pix's inputs, made in the DataLoader's workers --------------------------------------------
def upsample_like_pix2pix(image, size, first_resize=None):
    """uint8 HxWx3 -> uint8 at `size` (H, W) with PIL's bilinear filter (scipy.misc.imresize's), after
    an optional first resize (the real photos' 256x256)."""
    im = Image.fromarray(image)
    if first_resize and im.size != (first_resize[1], first_resize[0]):
        im = im.resize((first_resize[1], first_resize[0]), Image.BILINEAR)
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return np.array(im)


class WithFCN8sInput(torch.utils.data.Dataset):
    """Adds FCN8S_INPUT to every item of a LabelledImages-like dataset: its image upsampled to its
    label's resolution as pix2pix does (real photos through 256x256 first)."""

    def __init__(self, dataset, real_photos=False):
        self.dataset, self.real_photos = dataset, real_photos

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = dict(self.dataset[i])
        image = item["image"].permute(1, 2, 0).numpy()
        up = upsample_like_pix2pix(image, item["label"].shape[-2:],
                                   PIX2PIX_GT_SIZE if self.real_photos else None)
        item[FCN8S_INPUT] = torch.from_numpy(up).permute(2, 0, 1).contiguous()
        return item
