"""What a run shows while it trains: the visdom live view, Weights & Biases, HTML pages of images
and the loss logs."""
