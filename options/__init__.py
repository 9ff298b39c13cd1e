"""Command-line options of the entry points, every flag defined once: BaseOptions (shared: data,
networks, device), TrainOptions (optimizer, LR policy, losses, display, checkpoints), TestOptions.

Names and defaults are pix2pix's wherever pix2pix has the flag. To add a flag, add one
`parser.add_argument` to the class whose entry point needs it and check it in its `validate`. Library
code never sees the namespace: entry points pass it the few values it needs.
"""
from options.base_options import BaseOptions, save_options, saved_options, resolve_device
from options.train_options import TrainOptions
from options.test_options import TestOptions

__all__ = ["BaseOptions", "TrainOptions", "TestOptions", "save_options", "saved_options", "resolve_device"]
