"""pix2pix's --dataset_mode: name -> dataset class (its other modes: options/ says what to use instead)."""
from data.aligned import AlignedDataset
from data.single import SingleDataset

DATASET_MODES = {"aligned": AlignedDataset, "single": SingleDataset}
