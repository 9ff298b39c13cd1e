"""The dataset modes, pix2pix's --dataset_mode: name -> dataset class.

    aligned  A|B pairs side by side, one folder per phase (data/aligned.py): training and test.py
    single   single images, a folder or one file (data/single.py): test.py, applying a generator

pix2pix's other modes (unaligned, colorization, template) serve its other models and are not
carried over; options/ says what to use instead.
"""
from data.aligned import AlignedDataset
from data.single import SingleDataset

DATASET_MODES = {"aligned": AlignedDataset, "single": SingleDataset}
