"""Command-line options of the entry points: every flag is defined once, in one of three classes.

    BaseOptions   (base_options.py)   flags train.py and test.py share: data, networks, device
    TrainOptions  (train_options.py)  training: optimizer, LR policy, losses, display, checkpoints
    TestOptions   (test_options.py)   synthesis: results folder, phase, number of frames

Names and defaults are pix2pix's wherever pix2pix has the flag, so its users' commands carry over.
To add a flag, add one `parser.add_argument` to the class whose entry point needs it, and validate
it in that class's `validate`. Library code never sees the namespace: entry points pass it the
few values it needs.
"""
from options.base_options import BaseOptions, save_options, saved_options, resolve_device
from options.train_options import TrainOptions
from options.test_options import TestOptions

__all__ = ["BaseOptions", "TrainOptions", "TestOptions", "save_options", "saved_options",
           "resolve_device"]
