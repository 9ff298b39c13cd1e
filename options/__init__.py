"""Command-line options of the entry points, every flag defined once with its role beside it:
BaseOptions (data, networks, device), TrainOptions, TestOptions. Names and defaults are pix2pix's.
Library code never sees the namespace: entry points pass it the few values it needs."""
from options.base_options import BaseOptions, save_options, saved_options, resolve_device
from options.train_options import TrainOptions
from options.test_options import TestOptions

__all__ = ["BaseOptions", "TrainOptions", "TestOptions", "save_options", "saved_options", "resolve_device"]
