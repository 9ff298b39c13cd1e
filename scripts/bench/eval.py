"""Benchmark of evaluate/fcn_score.py: images/s of the pipeline against the segmenter's forward alone
on the same images (what loading, resizing and the metric add) and against a naive per-image loop (PIL
resize, numpy normalise, numpy confusion matrix), side by side in one run; each mode --repeats times, the
best kept. Without --dataroot: a temporary SynthCity val split; without --segmenter: an untrained
SegFormer-B0 saved and loaded as fcn_score.py would, or with --fcn8s pix2pix's FCN-8s with random weights
(speed does not depend on the weights). docs/evaluate.md has the commands and figures.
"""
import os, sys; sys.path.insert(0, os.path.abspath(os.path.join(__file__, "../../..")))  # noqa: E401,E702 (the repo root)

import argparse
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from data.layout import PreparedLayout
from evaluate import fcn8s, fcn_score, frames, protocols
from evaluate.metrics import scores_from_matrix
from pix2pix_tr.errors import run_cli
from scripts.bench.common import device_of, sync


def network_inputs(ev, dataset, batch_size, device):
    """What the segmenter's network consumes, made in advance on the device: the FCN-8s's upsampled,
    BGR-minus-mean images at the labels' size; an smp segmenter's normalised images at its size."""
    batches = []
    for i in range(0, len(dataset), batch_size):
        items = [dataset[j] for j in range(i, min(i + batch_size, len(dataset)))]
        if isinstance(ev, protocols.Pix2PixFCN8s):
            up = torch.stack([torch.from_numpy(protocols.upsample_like_pix2pix(
                it["image"].permute(1, 2, 0).numpy(), it["label"].shape)).permute(2, 0, 1) for it in items])
            batches.append(fcn8s.preprocess(up.to(device)).contiguous(memory_format=ev.memory_format))
        else:
            batches.append(ev.segmenter.normalize(torch.stack([it["image"] for it in items]).to(device), ev.size))
    return batches


def network(ev):
    return ev.model if isinstance(ev, protocols.Pix2PixFCN8s) else ev.segmenter.model


def forward_alone(ev, batches, device):
    """The segmenter's forward + argmax on inputs already prepared on the device."""
    model = network(ev)
    sync(device)
    t = time.perf_counter()
    with torch.no_grad():
        for x in batches:
            model(x).argmax(1)
    sync(device)
    return sum(len(x) for x in batches) / (time.perf_counter() - t)


def pipeline(ev, dataset, meta, batch_size, num_workers, device):
    t = time.perf_counter()
    fcn_score.score(dataset, [ev], num_classes=meta.num_classes, class_names=meta.classes, device=device,
                    batch_size=batch_size, num_workers=num_workers, desc="fcn_score pipeline")
    return len(dataset) / (time.perf_counter() - t)


def naive(ev, dataset, meta, device):
    """One image at a time: PIL bilinear resize, numpy normalisation, numpy confusion matrix (labels at
    the labels' size for the FCN-8s, resized by nearest neighbour to the segmenter's size otherwise)."""
    k = meta.num_classes
    fcn = isinstance(ev, protocols.Pix2PixFCN8s)
    if not fcn:
        pre = ev.segmenter.preprocessing
        mean, std = np.array(pre.mean, np.float32), np.array(pre.std, np.float32)
    model = network(ev)
    hist = np.zeros((k, k + 1), np.int64)
    t = time.perf_counter()
    for path, label_path in zip(dataset.image_paths, dataset.label_paths):
        label = Image.open(label_path)
        size = (label.height, label.width) if fcn else ev.size
        image = Image.fromarray(frames.read_rgb(path, dataset.photo_half)).resize((size[1], size[0]), Image.BILINEAR)
        if fcn:
            x = np.asarray(image, np.float32)[:, :, ::-1] - np.array(fcn8s.BGR_MEAN, np.float32)
        else:
            x = (np.asarray(image, np.float32) / 255 - mean) / std
        with torch.no_grad():
            pred = model(torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].to(device)).argmax(1)[0]
        pred = pred.cpu().numpy()
        label = np.asarray(label if fcn else label.resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)
        keep = label < k
        pred = np.where(pred < k, pred, k)
        hist += np.bincount(label[keep] * (k + 1) + pred[keep], minlength=k * (k + 1)).reshape(k, k + 1)
    scores_from_matrix(hist.tolist(), meta.classes)
    return len(dataset) / (time.perf_counter() - t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataroot", default=None, help="prepared dataset (default: temporary SynthCity)")
    p.add_argument("--segmenter", default=None,
                   help="hub id, folder or .caffemodel (default: an untrained SegFormer-B0)")
    p.add_argument("--fcn8s", action="store_true", help="without --segmenter: pix2pix's FCN-8s, random weights")
    p.add_argument("--segmenter_cache", default=fcn8s.DEFAULT_CACHE_DIR,
                   help="where a .caffemodel's conversion is cached (default fcn_score.py's)")
    p.add_argument("--frames", type=int, default=16, help="val frames to use")
    p.add_argument("--size", type=int, default=256, help="side of the temporary SynthCity frames")
    p.add_argument("--eval_size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"),
                   help="size smp segmenters run at (the FCN-8s runs at the labels' size)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--num_workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default torch's); 1 on a shared machine: two threads on two busy "
                        "cores spin-wait on each other and make every figure noise")
    args = p.parse_args(argv)
    device = device_of(args.device, args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp:
        dataroot = args.dataroot
        if dataroot is None:
            from data import synthcity

            dataroot = synthcity.generate(os.path.join(tmp, "synthcity"), num_train=1, num_val=args.frames,
                                          size=args.size, workers=1, log=lambda *a: None)
        meta = PreparedLayout(dataroot).read_meta()
        labels, photos = frames.label_paths(dataroot, "val"), frames.photo_paths(dataroot, "val")
        ids = frames.match_frames(photos, labels, "val pairs")[:args.frames]
        dataset = frames.LabelledImages(ids, photos, labels, frames.photo_half(meta))
        label_size = frames.check_one_size([labels[ids[0]]], "labels")
        if args.segmenter is None and args.fcn8s:
            torch.manual_seed(0)
            ev = protocols.Pix2PixFCN8s("random FCN-8s", fcn8s.FCN8s(), device)
        else:
            spec = args.segmenter
            if spec is None:
                import segmentation_models_pytorch as smp

                spec = os.path.join(tmp, "segformer-b0-untrained")
                smp.create_model(arch="segformer", encoder_name="mit_b0", encoder_weights=None,
                                 classes=19).save_pretrained(spec)
            fcn = protocols.is_caffemodel(spec)
            ev = protocols.load(spec, device=device, label_size=label_size, eval_size=None if fcn else args.eval_size,
                                cache_dir=args.segmenter_cache, log=lambda *a: None)
        batches = network_inputs(ev, dataset, args.batch_size, device)
        forward_alone(ev, batches[:1], device)                                # warm-up
        best = {"forward alone": 0.0, "fcn_score": 0.0, "naive loop": 0.0}
        for _ in range(args.repeats):
            best["forward alone"] = max(best["forward alone"], forward_alone(ev, batches, device))
            best["fcn_score"] = max(best["fcn_score"], pipeline(ev, dataset, meta, args.batch_size,
                                                               args.num_workers, device))
            best["naive loop"] = max(best["naive loop"], naive(ev, dataset, meta, device))
    size, protocol = ev.eval_size(label_size), ev.protocol(label_size)["name"]
    print(f"\n{len(dataset)} frames at {size[0]}x{size[1]}, segmenter {ev.short_name} ({protocol} "
          f"protocol), device {device}, batch {args.batch_size}, workers {args.num_workers}, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<16}{'images/s':>10}{'vs forward':>12}")
    for mode, ips in best.items():
        print(f"{mode:<16}{ips:>10.2f}{ips / best['forward alone']:>12.2f}")
    print(f"fcn_score / naive loop: {best['fcn_score'] / best['naive loop']:.2f}x")
    return best


if __name__ == "__main__":
    run_cli(main)
