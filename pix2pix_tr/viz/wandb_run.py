"""pix2pix's --use_wandb: losses and images to Weights & Biases. wandb is an optional dependency,
imported only when a run asks for it; it honours its own settings (WANDB_MODE=offline writes the run
under ./wandb/ for a later `wandb sync`)."""
import math

from pix2pix_tr.errors import UserError

WANDB_PROJECT = "CycleGAN-and-pix2pix"     # pix2pix's default --wandb_project_name


class WandbRun:
    """pix2pix's --use_wandb: one Weights & Biases run (`wandb.init(project, name, config)`, or the
    run already open in this process). wandb is an optional dependency, imported only here."""

    def __init__(self, project, name, config=None):
        try:
            import wandb
        except ImportError:
            raise UserError("--use_wandb needs the wandb package: pip install wandb (or leave --use_wandb "
                            "out)") from None
        self.wandb = wandb
        self.run = wandb.run or wandb.init(project=project, name=name, config=_plain_config(config or {}))
        self._table_epoch = None

    def log(self, values):
        self.run.log(dict(values))

    def log_images(self, images, epoch=None):
        """Log {label: HxWx3 uint8} as images; with `epoch`, also a row of pix2pix's "Result" table
        (epoch, then the images) the first time each epoch shows images."""
        pictures = {label: self.wandb.Image(image) for label, image in images.items()}
        self.run.log(pictures)
        if epoch is not None and epoch != self._table_epoch:
            self._table_epoch = epoch
            table = self.wandb.Table(columns=["epoch", *pictures])
            table.add_data(epoch, *pictures.values())
            self.run.log({"Result": table})

    def finish(self):
        self.run.finish()


def _plain_config(config):
    """Options as wandb config values: non-finite floats as strings (JSON has no inf)."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in config.items()}
