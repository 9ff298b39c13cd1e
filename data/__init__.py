"""Datasets: the prepared layout (`layout.py`), Cityscapes preparation, SynthCity, aligned pairs.

Every dataset is written in one prepared layout (see `data/layout.py`), so training, testing and
FCN-score cannot tell Cityscapes from SynthCity. To add a dataset, write a preparer that produces
that layout; nothing downstream changes.
"""
