"""Train a small smp segmenter on the real photos of a dataset that has no public one (SynthCity).

FCN-score then judges synthesized photos with it, as the Cityscapes defaults do.

    python evaluate/train_segmenter.py --dataroot datasets/synthcity \
        --output_dir checkpoints/segmenters/synthcity_256px

Trains from scratch (nothing downloads) at the dataset's own size on random crops, and saves with
`save_pretrained` plus the two files evaluate/segmenters.py reads; the folder appears whole or not at
all. One torch thread by default: the weights then do not depend on the machine's core count. The
defaults, their reasons and figures: docs/evaluate.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import glob  # noqa: E402
import inspect  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data.layout import PreparedLayout  # noqa: E402
from evaluate import frames, segmenters  # noqa: E402
from evaluate.metrics import ConfusionMatrix  # noqa: E402
from pix2pix_tr.run import atomic  # noqa: E402
from pix2pix_tr.run.checkpoint import NonFiniteWeights, check_finite  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402

WEIGHT_POWER = 0.5   # chosen over 0.25 by val IoU (docs/evaluate.md)
MODEL_KWARGS = {   # arch -> extra smp.create_model arguments that keep the decoder small
    "fpn": dict(decoder_pyramid_channels=64, decoder_segmentation_channels=32),
    "unet": dict(decoder_channels=(96, 64, 32, 24, 16)),
    "segformer": dict(decoder_segmentation_channels=64),
}


def load_split(dataroot, split, size, max_frames=None):
    """(photos uint8 [N, 3, S, S'], labels uint8 [N, S, S'], class names) of a split, resized the
    way evaluation resizes (bilinear antialiased photos, nearest labels)."""
    meta = PreparedLayout(dataroot).read_meta()
    half = frames.photo_half(meta)
    pairs = frames.photo_paths(dataroot, split)
    labels = frames.label_paths(dataroot, split)
    ids = frames.match_frames(pairs, labels, f"{split} pairs")[:max_frames]
    photos, masks = [], []
    for fid in tqdm(ids, desc=f"reading {split}", unit="frame", leave=False):
        photo = torch.from_numpy(frames.read_rgb(pairs[fid], half)).permute(2, 0, 1)[None]
        label = torch.from_numpy(frames.read_label(labels[fid], meta.num_classes, meta.ignore_index))[None]
        x = F.interpolate(photo.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
        photos.append(x.round_().clamp_(0, 255).to(torch.uint8))
        masks.append(segmenters.resize_labels(label, size).to(torch.uint8))
    return torch.cat(photos), torch.cat(masks), list(meta.classes)


def class_weights(labels, num_classes):
    """Pixel frequency to the power -WEIGHT_POWER per class (classes never seen weigh 0), mean 1 over the
    seen ones: thin classes (poles, signs, people) would otherwise be ignored."""
    counts = torch.bincount(labels[labels < num_classes].long(), minlength=num_classes).double()
    weights = torch.where(counts > 0, counts.clamp(min=1).pow(-WEIGHT_POWER), torch.zeros_like(counts))
    return (weights / weights[counts > 0].mean()).float()


def native_size(dataroot):
    """(H, W) of the dataset's labels: the size its photos were made at."""
    return frames.check_one_size([next(iter(frames.label_paths(dataroot, "train").values()))], "labels")


def random_crops(photos, labels, idx, crop, generator):
    """Batch of crop x crop windows at random places of photos[idx] / labels[idx] (whole images
    when crop covers them), randomly mirrored."""
    h, w = photos.shape[-2:]
    ch, cw = min(crop[0], h), min(crop[1], w)
    n = len(idx)
    # no draws where a crop has no room: whole-image training keeps the same random sequence
    tops = torch.randint(h - ch + 1, (n,), generator=generator).tolist() if h > ch else [0] * n
    lefts = torch.randint(w - cw + 1, (n,), generator=generator).tolist() if w > cw else [0] * n
    flips = (torch.rand(len(idx), generator=generator) < 0.5).tolist()
    xs, ys = [], []
    for i, t, left, f in zip(idx.tolist(), tops, lefts, flips):
        x, y = photos[i, :, t:t + ch, left:left + cw], labels[i, t:t + ch, left:left + cw]
        xs.append(x.flip(-1) if f else x)
        ys.append(y.flip(-1) if f else y)
    return torch.stack(xs), torch.stack(ys)


def train(dataroot, output_dir, *, arch="unet", encoder="tu-mobilenetv3_small_050", size=None, crop_size=128,
          steps=2000, batch_size=8, lr=3e-3, seed=0, max_frames=None, threads=1, log=print):
    """Train, score on val, save into output_dir (atomically). Returns the val scores.

    size: native (evaluation) size, default the dataset's own; crop_size: side of the random
    training windows cut from the size x size images (None or 0: whole images)."""
    check_output_dir(output_dir)
    if steps < 1:
        raise UserError(f"--steps {steps} must be at least 1")
    size = (size, size) if size else native_size(dataroot)
    crop = (crop_size, crop_size) if crop_size else size
    for flag, value in (("--size", size[0]), ("--size", size[1]), ("--crop_size", crop[0])):
        if value % 32:
            raise UserError(f"{flag} {value} must be a multiple of 32 (the encoder's output stride)")
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        import segmentation_models_pytorch as smp

        torch.manual_seed(seed)
        t0 = time.time()
        photos, labels, classes = load_split(dataroot, "train", size, max_frames)
        mean = torch.tensor(segmenters.IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(segmenters.IMAGENET_STD).view(1, 3, 1, 1)
        model = smp.create_model(arch=arch, encoder_name=encoder, encoder_weights=None, classes=len(classes),
                                 **MODEL_KWARGS.get(arch, {})).to(memory_format=torch.channels_last)
        weights = class_weights(labels, len(classes))
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.15)
        generator = torch.Generator().manual_seed(seed)
        model.train()
        bar = tqdm(range(steps), desc=f"training segmenter -> {output_dir}", unit="step")
        for step in bar:
            idx = torch.randint(len(photos), (batch_size,), generator=generator)
            x, y = random_crops(photos, labels, idx, crop, generator)
            x = segmenters.normalize_images(x, x.shape[-2:], mean, std)
            gain = 1 + 0.3 * (torch.rand(batch_size, 1, 1, 1, generator=generator) - 0.5)
            x = x * gain + 0.2 * (torch.rand(batch_size, 3, 1, 1, generator=generator) - 0.5)
            x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y.long(), weight=weights, ignore_index=255)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
        bar.close()
        train_seconds = time.time() - t0
        model.eval()
        pre = segmenters.Preprocessing(native_size=size, classes=classes)
        scores = evaluate_photos(segmenters.Segmenter(output_dir, model, pre, "cpu"), dataroot, size, classes)
        log(f"segmenter trained in {train_seconds:.0f} s; on val photos: pixel acc {scores['pixel_acc']:.3f}, "
            f"class acc {scores['class_acc']:.3f}, mean IoU {scores['mean_iou']:.3f}")
        info = {"classes": classes, "native_size": list(size), "dataset": PreparedLayout(dataroot).read_meta().name,
                "made_by": {"command": "evaluate/train_segmenter.py", "arch": arch, "encoder": encoder,
                            "size": list(size), "crop_size": list(crop), "steps": steps, "batch_size": batch_size,
                            "lr": lr, "seed": seed, "max_frames": max_frames, "train_frames": len(photos),
                            "train_seconds": round(train_seconds, 1), "torch": torch.__version__,
                            "threads": torch.get_num_threads()},
                "val_scores": {k: scores[k] for k in ("pixel_acc", "class_acc", "mean_iou", "absent")}}
        try:
            check_finite(model.state_dict(), "the segmenter")
        except NonFiniteWeights as err:
            raise UserError(f"{err}: its training diverged, so nothing was saved to {output_dir}; lower --lr") from None
        save(model.to(memory_format=torch.contiguous_format), output_dir, info)
        return scores
    finally:
        torch.set_num_threads(previous_threads)


def evaluate_photos(segmenter, dataroot, size, classes, batch_size=16):
    photos, labels, _ = load_split(dataroot, "val", size)
    matrix = ConfusionMatrix(len(classes))
    for i in range(0, len(photos), batch_size):
        matrix.update(segmenter.predict(photos[i:i + batch_size], size), labels[i:i + batch_size].long())
    return matrix.scores(classes)


def check_output_dir(output_dir):
    """An --output_dir is replaced only when it is a segmenter this script wrote, or empty."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise UserError(f"--output_dir {output_dir} is a file, not a folder; choose another --output_dir")
    if os.path.isdir(output_dir) and os.listdir(output_dir) and \
            not os.path.isfile(os.path.join(output_dir, segmenters.SEGMENTER_FILE)):
        raise UserError(f"--output_dir {output_dir} holds files that are not a segmenter written by this script "
                        f"(no {segmenters.SEGMENTER_FILE}); it would be replaced: choose a new or empty folder")


def save(model, output_dir, info):
    """save_pretrained + preprocessing files into a folder beside output_dir, then swapped in whole
    (atomic.replace_dir); what a killed save left beside it is cleared first."""
    output_dir = os.path.normpath(output_dir)
    for stale in glob.glob(glob.escape(output_dir) + ".tmp-*"):
        if not os.path.exists(f"/proc/{stale.rsplit('-', 1)[-1].split('.')[0]}"):   # its writer is gone
            shutil.rmtree(stale, ignore_errors=True)
    tmp = f"{output_dir}.tmp-{os.getpid()}"
    try:
        model.save_pretrained(tmp, dataset=info["dataset"], metrics=info["val_scores"])
        atomic.write_json(os.path.join(tmp, segmenters.ALBUMENTATIONS_FILE),
                          segmenters.albumentations_config(info["native_size"]))
        atomic.write_json(os.path.join(tmp, segmenters.SEGMENTER_FILE), info)
        atomic.replace_dir(tmp, output_dir)
    except OSError as err:
        raise atomic.write_error(output_dir, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = {name: p.default for name, p in inspect.signature(train).parameters.items()}    # train's own
    parser.add_argument("--dataroot", required=True, help="prepared dataset with labels/train and labels/val")
    parser.add_argument("--output_dir", required=True, help="where save_pretrained writes the segmenter")
    parser.add_argument("--arch", default=default["arch"], choices=sorted(MODEL_KWARGS))
    parser.add_argument("--encoder", default=default["encoder"], help="smp encoder name (no weights downloaded)")
    parser.add_argument("--size", type=int, default=default["size"],
                        help="native (evaluation) size (default: the dataset's image size)")
    parser.add_argument("--crop_size", type=int, default=default["crop_size"],
                        help="side of the random training crops of the --size images; 0: whole images")
    parser.add_argument("--steps", type=int, default=default["steps"])
    parser.add_argument("--batch_size", type=int, default=default["batch_size"])
    parser.add_argument("--lr", type=float, default=default["lr"])
    parser.add_argument("--seed", type=int, default=default["seed"])
    parser.add_argument("--max_frames", type=int, default=None, help="use only the first N train frames")
    parser.add_argument("--threads", type=int, default=default["threads"],
                        help="torch CPU threads (default 1: reproducible; 2 threads on busy shared cores spin-wait)")
    train(**vars(parser.parse_args(argv)))


if __name__ == "__main__":
    run_cli(main)
