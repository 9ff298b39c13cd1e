"""pix2pix_tr: pix2pix (labels -> photos) trained with trajectory-regularized optimizers.

The library half of the project: optimizers (`pix2pix_tr.optim`), networks, losses, the training
step, checkpoints and the live viewer. It receives plain values and tensors and imports neither
`options/` nor `data/`, so it can be used from anyone's training code.
"""
