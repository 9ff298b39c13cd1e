"""FCN-score: how well a pretrained segmenter recovers the labels a synthesized photo was made from.

    fcn_score.py        the CLI that ties them together
    frames.py           results and dataset photos matched to labels by frame id, batched onto the device
    protocols.py        how each segmenter is scored: pix2pix's FCN-8s protocol, SegFormers' official
                        test configs, native size
    metrics.py          confusion matrix on the device -> pixel / class accuracy, class IoU, the class means
    segmenters.py       smp segmenters in, via smp.from_pretrained (hub id or save_pretrained folder)
    fcn8s.py, caffe.py  pix2pix's FCN-8s as a torch module, converted from its .caffemodel and cached
    fid.py              FID and KID (--fid): torchmetrics on the TF FID Inception's features
    report.py           fcn_scores.json / fcn_scores.md, and --compare tables over runs
    digests.py          which weights judged: SHA-256 of weights files
    train_segmenter.py  trains a small smp segmenter for datasets without a public one (SynthCity)

Used from the repository root (`python evaluate/fcn_score.py`), not installed: the name `evaluate`
is also a PyPI package.
"""
