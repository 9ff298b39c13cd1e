"""One pix2pix training step: conditional GAN + L1, D then G (Isola et al. 2017).

    fake_B = G(real_A)
    D step: loss_D = 0.5 * (GAN(D(real_A, fake_B.detach()), fake) + GAN(D(real_A, real_B), real))
            (+ gradient penalty for wgangp)
    G step, with D frozen: loss_G = GAN(D(real_A, fake_B), real) + lambda_L1 * |fake_B - real_B|_1

The optimizers come from outside (any torch.optim.Optimizer: Adam, TRAdam, ...). The step syncs with
the host once: the four losses copied back together, which also drives the NaN/Inf check.
"""
import math

import torch
import torch.nn.functional as F

from pix2pix_tr.models.losses import GANLoss, gradient_penalty

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")
VISUAL_NAMES = ("real_A", "fake_B", "real_B")

# pix2pix's --model choices -> the images each shows, in pix2pix's order (its visual_names): pix2pix
# trains G and D together (Pix2PixModel); test is G alone on single images (pix2pix's TestModel)
MODELS = {"pix2pix": VISUAL_NAMES, "test": ("real", "fake")}


class NonFiniteLossError(ArithmeticError):
    """A loss became NaN or Inf. The nets in memory are then spoiled: do not save them; the
    checkpoints already on disk are the last good ones."""

    def __init__(self, losses):
        self.losses = dict(losses)
        bad = ", ".join(f"{k}={v}" for k, v in self.losses.items() if not math.isfinite(v))
        super().__init__(f"loss {bad} is not finite")


def autocast(device, amp):
    """The one mixed-precision rule of training and synthesis: bf16 autocast wherever --amp is given
    (CUDA, and CPUs whose oneDNN has bf16 kernels), full precision otherwise."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bool(amp))


class Pix2PixModel:
    def __init__(self, netG, netD, optimizer_G, optimizer_D, *, gan_mode="vanilla", lambda_L1=100.0,
                 device="cpu", amp=False, channels_last=False):
        """`netG`, `netD` (possibly DDP-wrapped) are moved to `device` in place: the parameters stay the
        same objects, but move them first so optimizer state (TR anchors) is made on the device."""
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        layout = {"memory_format": torch.channels_last} if channels_last else {}
        self.netG = netG.to(self.device, **layout)  # without channels_last: the nets' layout as given
        self.netD = netD.to(self.device, **layout)
        self.optimizer_G = optimizer_G
        self.optimizer_D = optimizer_D
        self.gan_mode = gan_mode
        self.criterionGAN = GANLoss(gan_mode)
        self.lambda_L1 = float(lambda_L1)
        self.amp = bool(amp)
        self._visuals = {}

    # ---- inputs ---------------------------------------------------------------------------
    def _to_device(self, tensor):
        return tensor.to(self.device, non_blocking=True, memory_format=self.memory_format)

    # ---- the step -------------------------------------------------------------------------------
    def train_step(self, batch):
        """One D update then one G update on `batch` (dict with A, B: [N,3,H,W] in [-1,1]).
        Returns {"G_GAN", "G_L1", "D_real", "D_fake"} as floats (G_L1 already times lambda_L1,
        as pix2pix reports it). Raises NonFiniteLossError when one of them is NaN or Inf."""
        real_A = self._to_device(batch["A"])
        real_B = self._to_device(batch["B"])
        # nets compiled with CUDA graphs (mode="reduce-overhead") reuse their output memory: a new
        # step may overwrite the last one's, and fake_B outlives later graph runs (D's, G's backward)
        torch.compiler.cudagraph_mark_step_begin()
        with autocast(self.device, self.amp):
            fake_B = self.netG(real_A).clone()

        # D: real pairs -> real, generated pairs -> fake.
        self.optimizer_D.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp):
            fake_AB = torch.cat((real_A, fake_B.detach()), 1)
            real_AB = torch.cat((real_A, real_B), 1)
            loss_D_fake = self.criterionGAN(self.netD(fake_AB), False)
            loss_D_real = self.criterionGAN(self.netD(real_AB), True)
            loss_D = 0.5 * (loss_D_fake + loss_D_real)
            if self.gan_mode == "wgangp":
                penalty, _ = gradient_penalty(self.netD, real_AB, fake_AB)
                loss_D = loss_D + penalty
        loss_D.backward()
        self.optimizer_D.step()

        # G: fool the (frozen) D, and stay close to the target in L1.
        self.optimizer_G.zero_grad(set_to_none=True)
        self.netD.requires_grad_(False)
        try:
            with autocast(self.device, self.amp):
                loss_G_GAN = self.criterionGAN(self.netD(torch.cat((real_A, fake_B), 1)), True)
                loss_G_L1 = F.l1_loss(fake_B, real_B) * self.lambda_L1
                loss_G = loss_G_GAN + loss_G_L1
            loss_G.backward()
            self.optimizer_G.step()
        finally:
            self.netD.requires_grad_(True)

        self._visuals = {"real_A": real_A, "fake_B": fake_B.detach(), "real_B": real_B}
        values = torch.stack([loss.detach().float() for loss in
                              (loss_G_GAN, loss_G_L1, loss_D_real, loss_D_fake)]).tolist()
        losses = dict(zip(LOSS_NAMES, values))  # the one host sync of the step
        if not all(math.isfinite(v) for v in values):
            raise NonFiniteLossError(losses)
        return losses

    def visuals(self):
        """The last step's images as float NCHW tensors in [-1, 1]: real_A, fake_B, real_B."""
        return {name: self._visuals[name].float().contiguous() for name in VISUAL_NAMES if name in self._visuals}

    def networks(self):
        return {"G": self.netG, "D": self.netD}

    def optimizers(self):
        return {"G": self.optimizer_G, "D": self.optimizer_D}
