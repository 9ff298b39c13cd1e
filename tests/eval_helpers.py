"""Fixtures of the evaluate/ tests: a prepared dataset written through data/layout.py, test.py-style
results folders, tiny smp segmenters saved with save_pretrained, and a per-image numpy restatement
of the FCN-score (PIL nearest labels, numpy confusion matrix) to check the pipeline against."""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from data.layout import DatasetMeta, PreparedLayout, cityscapes_classes

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)


def make_dataset(root, n_val=4, size=64, label_size=(64, 64), seed=0, segmenters=()):
    """A prepared dataset (Cityscapes classes) with val pairs, labels and metadata."""
    rng = np.random.default_rng(seed)
    names, palette = cityscapes_classes()
    layout = PreparedLayout(root)
    for split in ("val",):
        os.makedirs(layout.pair_dir(split), exist_ok=True)
        os.makedirs(layout.label_dir(split), exist_ok=True)
        for i in range(n_val):
            fid = f"frame_{i:03d}"
            lab = rng.integers(0, 19, (label_size[0] // 8, label_size[1] // 8)).repeat(8, 0).repeat(8, 1)
            lab[:2, :] = 255
            Image.fromarray(lab.astype(np.uint8)).save(layout.label_path(split, fid))
            photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            colour = np.array(palette + [[0, 0, 0]] * 237, np.uint8)[
                np.asarray(Image.fromarray(lab.astype(np.uint8)).resize((size, size), Image.NEAREST))]
            Image.fromarray(np.concatenate([colour, photo], 1)).save(layout.pair_path(split, fid, ".png"))
    layout.write_meta(DatasetMeta(name="tiny", classes=names, palette=palette, image_size=[size, size],
                                  label_size=list(label_size), splits={"val": n_val},
                                  segmenters=list(segmenters)))
    return layout


def write_results(results_dir, images):
    """{frame_id: HxWx3 uint8} -> results_dir/images/<frame_id>_fake_B.png (test.py's layout)."""
    folder = os.path.join(results_dir, "images")
    os.makedirs(folder, exist_ok=True)
    for fid, image in images.items():
        Image.fromarray(image).save(os.path.join(folder, f"{fid}_fake_B.png"))
    return results_dir


def tiny_segmenter(folder, *, seed=0, native_size=None, classes=19):
    """A random tiny smp FPN saved with save_pretrained (+ segmenter.json with native_size)."""
    import segmentation_models_pytorch as smp

    torch.manual_seed(seed)
    model = smp.create_model(arch="fpn", encoder_name="tu-mobilenetv3_small_050", encoder_weights=None,
                             classes=classes, decoder_pyramid_channels=32, decoder_segmentation_channels=32)
    for p in model.segmentation_head.parameters():        # spread the random predictions over classes
        torch.nn.init.normal_(p, std=3.0)
    model.eval().save_pretrained(folder)
    if native_size:
        with open(os.path.join(folder, "segmenter.json"), "w") as f:
            json.dump({"native_size": list(native_size)}, f)
    return model


def naive_scores(model, image_paths, label_paths, size, num_classes=19):
    """Per-image FCN-score restated with PIL and numpy: {pixel_acc, class_acc, mean_iou, absent idx}."""
    hist = np.zeros((num_classes, num_classes + 1), np.int64)
    for ip, lp in zip(image_paths, label_paths):
        x = torch.from_numpy(np.asarray(Image.open(ip).convert("RGB"), np.float32) / 255).permute(2, 0, 1)[None]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        x = (x - torch.from_numpy(MEAN)) / torch.from_numpy(STD)
        with torch.no_grad():
            pred = model.eval()(x).argmax(1)[0].numpy()
        lab = np.asarray(Image.open(lp).resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)
        keep = lab < num_classes
        hist += np.bincount(lab[keep] * (num_classes + 1) + pred[keep],
                            minlength=num_classes * (num_classes + 1)).reshape(num_classes, num_classes + 1)
    tp = np.diag(hist[:, :num_classes])
    n_label, n_pred = hist.sum(1), hist[:, :num_classes].sum(0)
    present = n_label > 0
    return {"pixel_acc": tp.sum() / n_label.sum(),
            "class_acc": (tp[present] / n_label[present]).mean(),
            "mean_iou": (tp[present] / (n_label + n_pred - tp)[present]).mean(),
            "absent": np.flatnonzero(~present).tolist()}


def stand_in_inception(path, seed=0):
    """Random weights of the FID Inception in the format --fid_weights reads (torch-fidelity's state
    dict, torch.save): He-normal convolutions and small BatchNorm biases, so the 2048 features differ
    between images. The architecture is torch-fidelity's own, built without loading any weights."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, *args, **kwargs):      # keep the fresh layers
            return None

    empty = f"{path}.empty"
    torch.save({}, empty)
    try:
        state = Unloaded("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty).state_dict()
    finally:
        os.remove(empty)
    gen = torch.Generator().manual_seed(seed)
    for name, value in state.items():
        if name.endswith("conv.weight"):
            value.copy_(torch.randn(value.shape, generator=gen) * (2.0 / value[0].numel()) ** 0.5)
        elif name.endswith("bn.bias"):
            value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
    torch.save(state, path)
    return path
