"""FCN-score of synthesized photos: segment them with pretrained segmenters and compare with the
labels they were made from (pix2pix's evaluation); --fid adds FID and KID. docs/evaluate.md is the manual.

    python evaluate/fcn_score.py --results_dir results/city_tradam/val_latest \
        --dataroot datasets/cityscapes --segmenter path/fcn-8s-cityscapes.caffemodel --gt
    python evaluate/fcn_score.py --compare results/adam_seed*/val_latest results/tradam_seed*/val_latest

Results are matched to labels by frame id (evaluate/frames.py); each segmenter runs under its protocol
(evaluate/protocols.py). One pass over the images serves every segmenter: DataLoader workers decode
while the device segments, and the confusion matrices stay on the device until the end.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from data.layout import PreparedLayout  # noqa: E402
from evaluate import digests, fcn8s, fid, frames, protocols, report  # noqa: E402
from evaluate.metrics import ConfusionMatrix  # noqa: E402
from options.base_options import OptionParser, non_negative_int, positive_int, resolve_device  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402
from pix2pix_tr.run import atomic, distributed  # noqa: E402

# Datasets whose default segmenter this repo makes itself: dataset name -> train_segmenter kwargs.
TRAINABLE_DEFAULTS = {"synthcity": {}}


def parse_args(argv):
    p = OptionParser(description=__doc__.split("\n")[0])   # argparse whose errors are one UserError line
    p.add_argument("--results_dir", help="test.py's results/<name>/<phase>_<epoch> folder (or its images/)")
    p.add_argument("--dataroot", help="prepared dataset with labels/<phase>/ (data/layout.py)")
    p.add_argument("--phase", default=None, help="split the results were synthesized from (default: the "
                   "<phase> of the results folder's <phase>_<epoch> name, as test.py names it)")
    p.add_argument("--segmenter", action="append", default=None,
                   help="smp hub id, save_pretrained folder or pix2pix's fcn-8s-cityscapes.caffemodel; "
                        "repeat for several (default: the dataset's)")
    p.add_argument("--segmenter_cache", default=fcn8s.DEFAULT_CACHE_DIR,
                   help="where a .caffemodel's PyTorch conversion is cached (safetensors, by the file's hash)")
    p.add_argument("--gt", action="store_true", help="also score the dataset's real photos (ground-truth row)")
    p.add_argument("--device", default="auto", help="auto (cuda if a GPU is usable, else cpu) | cpu | cuda | cuda:N")
    p.add_argument("--cudnn_benchmark", action="store_true",
                   help="CUDA: let cuDNN time its convolution algorithms and take the fastest (faster; the "
                        "timing decides the arithmetic, so two runs may differ in a tied pixel)")
    p.add_argument("--batch_size", type=positive_int, default=1)
    p.add_argument("--num_workers", type=non_negative_int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--eval_size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="evaluate at this size instead of each segmenter's native one")
    p.add_argument("--output_dir", default=None, help="where fcn_scores.json/.md go (default: the results folder)")
    p.add_argument("--label", default=None, help="row name of this run (default: the run's name)")
    p.add_argument("--fid", action="store_true",
                   help="also FID and KID of the results against the real photos of the split (same resolution)")
    p.add_argument("--fid_weights", default=None, metavar="PATH",
                   help="local Inception weights for --fid (torch-fidelity's weights-inception-2015-12-05-"
                        "6726825d.pth or pytorch-fid's pt_inception-2015-12-05-6726825d.pth); default: "
                        "download torch-fidelity's (torchmetrics' URL) once into torch.hub's cache")
    p.add_argument("--fid_batch_size", type=positive_int, default=32, help="images per Inception batch for --fid")
    p.add_argument("--kid_subsets", type=positive_int, default=fid.KID_SUBSETS, help="KID: number of random subsets")
    p.add_argument("--kid_subset_size", type=int, default=None,
                   help=f"KID: frames per subset (default {fid.KID_MAX_SUBSET_SIZE}, or half the frames when "
                        f"there are fewer than {2 * fid.KID_MAX_SUBSET_SIZE})")
    p.add_argument("--compare", nargs="+", metavar="DIR", default=None,
                   help="instead of scoring: put these runs' fcn_scores.json in one table")
    args = p.parse_args(argv)
    if args.compare is None and not (args.results_dir and args.dataroot):
        p.error("--results_dir and --dataroot are required (or --compare DIR ...)")
    if (args.fid_weights or args.kid_subset_size is not None) and not args.fid:
        p.error("--fid_weights and --kid_subset_size go with --fid")
    if args.eval_size is not None and min(args.eval_size) < 1:
        p.error(f"--eval_size {args.eval_size[0]} {args.eval_size[1]}: height and width must be positive "
                "(e.g. --eval_size 512 1024), or leave it out to use each segmenter's native size")
    return args


def run_name(results_dir):
    """results/<name>/<phase>_<epoch>[/images] -> <name>."""
    folder = os.path.abspath(frames.run_folder(results_dir))
    return os.path.basename(os.path.dirname(folder)) or os.path.basename(folder)


def phase_of(results_dir):
    """results/<name>/<phase>_<epoch>[_iter<N>][/images] -> <phase> (test.py's name: test_latest for
    pix2pix's split, val_latest for a prepared dataset's); val for a folder not named so."""
    folder = os.path.basename(os.path.abspath(frames.run_folder(results_dir)))
    named = re.fullmatch(r"(.+)_(latest|\d+)(_iter\d+)?", folder)
    return named.group(1) if named else "val"


def resolve_segmenters(requested, meta, dataroot, log=print):
    """The segmenter specs to use; a missing default that this repo can make is trained now."""
    if requested:
        return list(requested)
    if not meta.segmenters:
        raise UserError(f"dataset {meta.name} names no default segmenters in its metadata.json; "
                        "pass --segmenter")
    for spec in meta.segmenters:
        if meta.name in TRAINABLE_DEFAULTS and digests.is_local(spec) and not os.path.exists(spec):
            from evaluate import train_segmenter

            log(f"{spec} does not exist yet: training {meta.name}'s default segmenter on {dataroot} "
                "(once; cached there)")
            train_segmenter.train(dataroot, spec, log=log, **TRAINABLE_DEFAULTS[meta.name])
    return list(meta.segmenters)


def score(dataset, evaluators, *, num_classes, class_names, device, batch_size, num_workers, desc,
          real_photos=False):
    """Scores of every segmenter (an evaluate/protocols.py Evaluator) on one dataset in one pass:
    {segmenter name: scores dict}. `real_photos`: the dataset holds the real photos (pix2pix's
    protocol resizes them to 256x256 first)."""
    if any(e.needs_fcn8s_input for e in evaluators):
        dataset = protocols.WithFCN8sInput(dataset, real_photos)
    matrices = [ConfusionMatrix(num_classes, device=device) for _ in evaluators]
    for batch in frames.device_batches(dataset, device=device, batch_size=batch_size, num_workers=num_workers,
                                       desc=desc):
        for evaluator, matrix in zip(evaluators, matrices):
            matrix.update(*evaluator.evaluate(batch))
    for matrix in matrices:
        distributed.all_reduce_sum(matrix.counts)  # every frame counted once over all ranks
    return {e.name: e.scores(matrix.matrix.cpu().tolist(), class_names) for e, matrix in zip(evaluators, matrices)}


def main(argv=None):
    args = parse_args(argv)
    if args.compare:
        return compare_main(args)
    args.device = resolve_device(args.device)       # --device gpu, or cuda without a GPU: one line
    meta = PreparedLayout(args.dataroot).read_meta()
    args.phase = args.phase or phase_of(args.results_dir)
    labels = frames.label_paths(args.dataroot, args.phase)
    results = frames.find_results(args.results_dir)
    frame_ids = frames.match_frames(results, labels, "result images")
    results_size = frames.check_one_size([results[f] for f in frame_ids], f"the images in {args.results_dir}")
    label_size = frames.check_one_size([labels[f] for f in frame_ids[:1 if args.batch_size == 1 else None]],
                                       "labels", fix="a batch holds one size: pass --batch_size 1")
    fid_inputs = None
    if args.fid:    # every check and the weights before any image is segmented
        fid_inputs = fid.prepare(frame_ids, results, results_size, labels, results_dir=args.results_dir,
                                 dataroot=args.dataroot, phase=args.phase, meta=meta, weights=args.fid_weights,
                                 kid_subset_size=args.kid_subset_size)

    specs = resolve_segmenters(args.segmenter, meta, args.dataroot)
    args.device = str(distributed.init_distributed(args.device))  # torchrun: one device per rank
    evaluators = [protocols.load(spec, device=args.device, label_size=label_size, eval_size=args.eval_size,
                                 cache_dir=args.segmenter_cache) for spec in specs]
    for evaluator in evaluators:
        protocols.check_dataset(evaluator, meta)
    if torch.device(args.device).type == "cuda":
        torch.backends.cudnn.benchmark = args.cudnn_benchmark   # a timed choice of kernels: opt-in
        torch.backends.cudnn.allow_tf32 = False     # fp32 convolutions as Caffe and mmseg ran them
    elif any(isinstance(e, protocols.Pix2PixFCN8s) for e in evaluators):
        print(f"pix2pix's FCN-8s segments at the labels' {label_size[0]}x{label_size[1]} on the CPU: about "
              "30-40 s a 2048x1024 frame per core (the progress bar shows the ETA); a GPU, well under 1 s")
    common = dict(num_classes=meta.num_classes, class_names=meta.classes, device=args.device,
                  batch_size=args.batch_size, num_workers=args.num_workers)

    checks = dict(num_classes=meta.num_classes, ignore_index=meta.ignore_index)   # labelIds are refused
    by_seg = score(frames.LabelledImages(frame_ids, results, labels, **checks), evaluators,
                   desc=f"FCN-score of {len(frame_ids)} results", **common)
    described = {e.name: {"eval_size": list(e.eval_size(label_size)), "protocol": e.protocol(label_size),
                          "weights_fingerprint": digests.weights_fingerprint(e.name)}   # what judged
                 for e in evaluators}
    out = {"run": args.label or run_name(args.results_dir), "dataset": meta.name, "phase": args.phase,
           "num_frames": len(frame_ids), "results_dir": os.path.normpath(args.results_dir),
           "segmenters": {name: {**described[name], **s} for name, s in by_seg.items()}}
    if args.gt:
        photos = frames.photo_paths(args.dataroot, args.phase)
        gt_ids = frames.match_frames(photos, labels, f"{args.phase} pairs")
        gt = score(frames.LabelledImages(gt_ids, photos, labels, frames.photo_half(meta), **checks), evaluators,
                   desc=f"FCN-score of {len(gt_ids)} real photos", real_photos=True, **common)
        out["ground_truth"] = {name: {**described[name], **s} for name, s in gt.items()}
    if fid_inputs is not None:
        out["fid_kid"] = fid.evaluate(fid_inputs, dataset_name=meta.name, device=args.device,
                                      batch_size=args.fid_batch_size, num_workers=args.num_workers,
                                      kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size)

    writes = distributed.is_main_process()  # rank 0 alone writes the report
    distributed.cleanup()
    if not writes:
        return out
    output_dir = args.output_dir or frames.run_folder(args.results_dir)
    json_path, md_path = report.write(out, output_dir)
    print(report.markdown(out).split("\n## Per class")[0].rstrip())
    print(f"wrote {json_path} and {md_path}")
    return out


def compare_main(args):
    table = report.compare([report.read(d) for d in args.compare])
    text = report.compare_markdown(table)
    print(text.rstrip())
    if args.output_dir:
        atomic.write_json(os.path.join(args.output_dir, report.COMPARE_JSON), table)
        atomic.write_text(os.path.join(args.output_dir, report.COMPARE_MD), text)
        print(f"wrote {os.path.join(args.output_dir, report.COMPARE_MD)}")
    return table


if __name__ == "__main__":
    run_cli(main)
