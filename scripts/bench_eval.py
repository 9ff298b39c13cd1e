"""Benchmark of evaluate/fcn_score.py: images/s of the pipeline against the segmenter's forward alone
on the same images (what loading, resizing and the metric add; target >= 0.9 of it) and against a
naive per-image loop (PIL resize, numpy normalise, numpy confusion matrix), side by side in one run.

    python scripts/bench_eval.py                       # SynthCity frames, random SegFormer-B0, CPU
    python scripts/bench_eval.py --device cuda --eval_size 512 1024 --frames 100
    python scripts/bench_eval.py --dataroot datasets/cityscapes \
        --segmenter smp-hub/segformer-b0-512x1024-city-160k --device cuda

Without --dataroot it generates a small SynthCity val split in a temporary folder; without
--segmenter it saves an untrained smp model of --arch/--encoder there (speed does not depend on the
weights). The real photos serve as the results. Each mode runs --repeats times; the best is kept.

Measured (CPU, `python scripts/bench_eval.py --threads 1 --repeats 3`, shared 2-core machine, load
average ~5): forward alone 3.67 images/s, fcn_score 3.45 (0.94 of it), naive loop 3.49. Before the
int32 confusion index, uint8 label resize and channels_last forward, at the same load:
forward 2.97, fcn_score 3.22 (see docs/readme/evaluate.md).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from data.layout import PreparedLayout  # noqa: E402
from evaluate import fcn_score, frames, segmenters  # noqa: E402
from evaluate.metrics import scores_from_matrix  # noqa: E402
from pix2pix_tr.errors import run_cli  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_alone(seg, images, size, batch_size, device):
    """The segmenter's forward + argmax on images already normalised on the device."""
    batches = [seg.normalize(images[i:i + batch_size].to(device), size) for i in range(0, len(images), batch_size)]
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        for x in batches:
            seg.model(x).argmax(1)
    sync(device)
    return len(images) / (time.perf_counter() - t)


def pipeline(seg, dataset, size, meta, batch_size, num_workers, device):
    t = time.perf_counter()
    fcn_score.score(dataset, [seg], [size], num_classes=meta.num_classes, class_names=meta.classes, device=device,
                    batch_size=batch_size, num_workers=num_workers, desc="fcn_score pipeline")
    return len(dataset) / (time.perf_counter() - t)


def naive(seg, dataset, size, meta, device):
    """One image at a time: PIL bilinear resize, numpy normalisation, numpy confusion matrix."""
    k = meta.num_classes
    mean, std = np.array(seg.preprocessing.mean, np.float32), np.array(seg.preprocessing.std, np.float32)
    hist = np.zeros((k, k + 1), np.int64)
    t = time.perf_counter()
    for path, label_path in zip(dataset.image_paths, dataset.label_paths):
        image = Image.fromarray(frames.read_rgb(path, dataset.photo_half)).resize((size[1], size[0]), Image.BILINEAR)
        x = (np.asarray(image, np.float32) / 255 - mean) / std
        with torch.no_grad():
            pred = seg.model(torch.from_numpy(x).permute(2, 0, 1)[None].to(device)).argmax(1)[0].cpu().numpy()
        label = np.asarray(Image.open(label_path).resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)
        keep = label < k
        pred = np.where(pred < k, pred, k)
        hist += np.bincount(label[keep] * (k + 1) + pred[keep], minlength=k * (k + 1)).reshape(k, k + 1)
    scores_from_matrix(hist.tolist(), meta.classes)
    return len(dataset) / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", default=None, help="prepared dataset (default: temporary SynthCity)")
    p.add_argument("--segmenter", default=None, help="hub id or folder (default: untrained --arch/--encoder)")
    p.add_argument("--arch", default="segformer")
    p.add_argument("--encoder", default="mit_b0")
    p.add_argument("--frames", type=int, default=16, help="val frames to use")
    p.add_argument("--eval_size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--num_workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default torch's); 1 on a shared machine: two threads on two busy "
                        "cores spin-wait on each other and make every figure noise")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        dataroot = args.dataroot
        if dataroot is None:
            from data import synthcity

            dataroot = synthcity.generate(os.path.join(tmp, "synthcity"), num_train=1, num_val=args.frames,
                                          size=256, workers=1, log=lambda *a: None)
        spec = args.segmenter
        if spec is None:
            import segmentation_models_pytorch as smp

            spec = os.path.join(tmp, "segmenter")
            smp.create_model(arch=args.arch, encoder_name=args.encoder, encoder_weights=None,
                             classes=19).save_pretrained(spec)
        meta = PreparedLayout(dataroot).read_meta()
        labels = frames.label_paths(dataroot, "val")
        photos = frames.photo_paths(dataroot, "val")
        ids = frames.match_frames(photos, labels, "val pairs")[:args.frames]
        dataset = frames.LabelledImages(ids, photos, labels, frames.photo_half(meta))
        seg = segmenters.load_segmenter(spec, device=device)
        size = seg.eval_size(None, args.eval_size)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
        forward_alone(seg, images[:1], size, 1, device)                       # warm-up
        best = {"forward alone": 0.0, "fcn_score": 0.0, "naive loop": 0.0}
        for _ in range(args.repeats):
            best["forward alone"] = max(best["forward alone"], forward_alone(seg, images, size, args.batch_size, device))
            best["fcn_score"] = max(best["fcn_score"], pipeline(seg, dataset, size, meta, args.batch_size,
                                                               args.num_workers, device))
            best["naive loop"] = max(best["naive loop"], naive(seg, dataset, size, meta, device))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{len(dataset)} frames at {size[0]}x{size[1]}, segmenter {spec if args.segmenter else args.arch + '/' + args.encoder}, "
          f"device {device}, batch {args.batch_size}, workers {args.num_workers}, torch threads "
          f"{torch.get_num_threads()}, load average {load:.1f}")
    print(f"{'mode':<16}{'images/s':>10}{'vs forward':>12}")
    for mode, ips in best.items():
        print(f"{mode:<16}{ips:>10.2f}{ips / best['forward alone']:>12.2f}")
    print(f"fcn_score / naive loop: {best['fcn_score'] / best['naive loop']:.2f}x")
    return best


if __name__ == "__main__":
    run_cli(main)
