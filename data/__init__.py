"""Datasets: one prepared layout (`layout.py`) written by the Cityscapes preparer and SynthCity."""
