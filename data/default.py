"""Which dataset a run uses when the user names none, and what a dataset folder can do: prepared
Cityscapes under datasets/, else SynthCity (generated the first time), so `python train.py` works out of
the box; pix2pix's own folders train but have no evaluation labels; `test_split` picks what test.py
synthesizes from a prepared dataset (every frame of a labelled split, as FCN-score needs).
"""
import os

from data.layout import PREPARE_CITYSCAPES, PreparedLayout
from pix2pix_tr.errors import UserError


def resolve_dataroot(dataroot, datasets_dir="datasets", log=print):
    """The dataset folder to use: `dataroot` if given (it must exist), else prepared Cityscapes,
    else SynthCity (generated on first use)."""
    if dataroot is not None:
        if not os.path.isdir(dataroot):
            raise UserError(f"--dataroot {dataroot} does not exist; prepare a dataset there with "
                            "data/prepare_cityscapes.py or data/synthcity.py, or leave --dataroot out "
                            "to use SynthCity")
        layout = PreparedLayout(dataroot)
        layout.check_finished()            # an interrupted preparation is not a pix2pix folder
        if not layout.is_prepared():
            log(f"{dataroot} has no metadata.json: reading it as pix2pix's prepared folder (train/ val/ of "
                "side-by-side pairs; pix2pix's cityscapes pairs are photo|label, so train labels->photos "
                "with --direction BtoA). FCN-score needs the gtFine labels: prepare them with "
                + PREPARE_CITYSCAPES.format(root="DIR"))
        return dataroot
    cityscapes = PreparedLayout(os.path.join(datasets_dir, "cityscapes"))
    synthcity = PreparedLayout(os.path.join(datasets_dir, "synthcity"))
    cityscapes.check_finished()            # finish it rather than train on SynthCity unawares
    if cityscapes.is_prepared():
        log(f"dataset: prepared Cityscapes in {cityscapes.root}")
        return cityscapes.root
    if synthcity.is_prepared():
        log(f"dataset: no prepared Cityscapes in {cityscapes.root}; using SynthCity in {synthcity.root}")
        return synthcity.root
    from data import synthcity as synth

    log(f"dataset: no prepared Cityscapes in {cityscapes.root}; generating SynthCity in {synthcity.root} "
        f"(once; python data/synthcity.py --help for its options)")
    return synth.generate(synthcity.root, log=log)


def test_split(root, phase, num_test, *, phase_typed, num_test_typed, log=print):
    """(phase, num_test) for test.py. On a prepared dataset: without --phase, val unless the
    dataset has a labelled test split; without --num_test, every frame; said in one line.
    On any other folder (pix2pix's): as given."""
    layout = PreparedLayout(root)
    if not layout.is_prepared() or (phase_typed and num_test_typed):
        return phase, num_test
    fell_back = not phase_typed and not (layout.has_labels(phase) and os.path.isdir(layout.pair_dir(phase)))
    if fell_back:
        phase = "val"
    if not num_test_typed:
        num_test = float("inf")
    how_many = "all frames" if num_test == float("inf") else f"at most {num_test:g} frames"
    log(f"{root} is a prepared dataset{' without a labelled test split' if fell_back else ''}: synthesizing "
        f"{how_many} of {phase}, as FCN-score needs (--phase and --num_test choose otherwise)")
    return phase, num_test
