"""Synthesis flags for test.py: which run, which split, where the results go.

The architecture and image size come from the run's saved options, so `python test.py --dataroot D
--name X` suffices; a typed flag overrides them. As in pix2pix, images are resized straight to
--crop_size and not flipped, and the defaults are pix2pix's (--phase test, --num_test 50); a prepared
dataset gives FCN-score every frame of a labelled split unless told otherwise (data/default.py).
"""

from options.base_options import ARCHITECTURE, DATA, BaseOptions, positive_float


class TestOptions(BaseOptions):
    description = "Synthesize a split with a trained pix2pix generator; images named by frame id."

    def initialize(self, parser):
        super().initialize(parser)
        parser.add_argument("--results_dir", default="./results", help="results/<name>/<phase>_<epoch>/")
        parser.add_argument("--phase", default="test",
                            help="split to synthesize (<dataroot>/<phase>/); a prepared dataset without a "
                                 "labelled test split uses val")
        parser.add_argument("--num_test", type=float, default=50,
                            help="synthesize at most this many frames (a prepared dataset: all, unless given)")
        parser.add_argument("--aspect_ratio", type=positive_float, default=1.0,
                            help="save results with width/height stretched by this ratio (> 1 wider, < 1 taller)")
        parser.add_argument("--model_suffix", default="",
                            help="--model test: load <epoch>_net_G<model_suffix>.pth (pix2pix's TestModel)")
        parser.add_argument("--eval", action="store_true",
                            help="eval mode (BatchNorm running stats, no dropout); pix2pix's default is train mode")
        return parser

    several_gpus = "test.py runs on one device: pick one GPU, e.g. --gpu_ids 0"

    def complete(self, opt):
        super().complete(opt)                          # --suffix: before the run's folder is read
        opt.saved_options_found = self.take_saved(opt, self.keys_with_role(ARCHITECTURE, DATA)) is not None
        if "load_size" not in self.explicit:
            opt.load_size = opt.crop_size         # pix2pix's test: resize to the crop, no random crop
        opt.no_flip = True
        return opt
