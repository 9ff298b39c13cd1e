"""pix2pix's networks (state-dict compatible with pix2pix's checkpoints), its losses, and the
training step (`Pix2PixModel.train_step`). torch alone: no files, no options, no viewer."""
