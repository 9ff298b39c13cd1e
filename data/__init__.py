"""Datasets: one prepared layout (`layout.py`) written by the Cityscapes preparer and SynthCity, so
training, testing and FCN-score cannot tell them apart; the aligned and single dataset modes."""
