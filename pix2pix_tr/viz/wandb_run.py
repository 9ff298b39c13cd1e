"""pix2pix's --use_wandb: losses and images to Weights & Biases. wandb is optional, imported only when a
run asks for it, and honours its own settings (WANDB_MODE=offline keeps the run under ./wandb/)."""
import math

from pix2pix_tr.errors import UserError

WANDB_PROJECT = "CycleGAN-and-pix2pix"     # pix2pix's default --wandb_project_name


class WandbRun:
    """One wandb run (`wandb.init(project, name, config)`, or the one already open in this process)."""

    def __init__(self, project, name, config=None):
        try:
            import wandb
        except ImportError:
            raise UserError("--use_wandb needs the wandb package: pip install wandb (or leave --use_wandb "
                            "out)") from None
        self.wandb = wandb
        config = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)   # JSON has no inf
                  for k, v in (config or {}).items()}
        self.run = wandb.run or wandb.init(project=project, name=name, config=config)
        self._table_epoch = None

    def log(self, values):
        self.run.log(dict(values))

    def log_images(self, images, epoch=None):
        """Log {label: HxWx3 uint8}; with `epoch`, also a row of pix2pix's "Result" table (epoch, then the
        images) the first time each epoch shows images."""
        pictures = {label: self.wandb.Image(image) for label, image in images.items()}
        self.run.log(pictures)
        if epoch is not None and epoch != self._table_epoch:
            self._table_epoch = epoch
            table = self.wandb.Table(columns=["epoch", *pictures])
            table.add_data(epoch, *pictures.values())
            self.run.log({"Result": table})

    def finish(self):
        self.run.finish()
