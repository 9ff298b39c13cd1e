"""pix2pix's --dataset_mode: name -> dataset class. aligned: A|B pairs (training, test.py); single:
images of a folder or one file (test.py). pix2pix's other modes: options/ says what to use instead."""
from data.aligned import AlignedDataset
from data.single import SingleDataset

DATASET_MODES = {"aligned": AlignedDataset, "single": SingleDataset}
