"""FCN-score: how well a pretrained segmenter recovers the labels a synthesized photo was made from.

    metrics.py          confusion matrix on the device -> pixel / class accuracy, class IoU
    segmenters.py       segmenters in, via smp.from_pretrained (hub id or save_pretrained dir)
    caffe.py            Caffe's .caffemodel wire format, read (and written) without Caffe
    fcn8s.py            pix2pix's FCN-8s as a torch module, converted from its caffemodel and cached
    protocols.py        how each segmenter is scored: pix2pix's FCN-8s protocol, SegFormers' official
                        test configs, native size; the class means each protocol takes
    frames.py           results and dataset photos matched to labels by frame id (DataLoaders)
    fid.py              FID and KID (--fid) of the results against the real photos: torchmetrics on the
                        TF FID Inception's features, weights downloaded or from --fid_weights
    report.py           fcn_scores.json / fcn_scores.md, and --compare tables over runs
    fcn_score.py        the CLI that ties them together
    train_segmenter.py  trains a small smp segmenter for datasets without a public one (SynthCity)

Used from the repository root (`python evaluate/fcn_score.py`), not installed: the name `evaluate`
is also a PyPI package.
"""
