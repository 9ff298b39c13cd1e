"""GAN objectives of pix2pix on the discriminators' raw logits (no sigmoid layer):

    vanilla  BCE with logits against 1 (real) / 0 (fake), pix2pix's default
    lsgan    mean squared error against 1 / 0
    wgangp   -mean(prediction) for real, +mean(prediction) for fake; add `gradient_penalty` to D's loss

Label tensors are made on first use like the prediction (shape, dtype, device) and reused, so nothing
needs moving and autocast and channels_last just work. To add a mode: one loss(prediction, target) in GAN_MODES.
"""
import torch
import torch.nn.functional as F

from pix2pix_tr.errors import UserError


GAN_MODES = {"vanilla": F.binary_cross_entropy_with_logits, "lsgan": F.mse_loss, "wgangp": None}  # wgangp: no target


class GANLoss:
    """`GANLoss(gan_mode)(prediction, target_is_real) -> scalar loss`."""

    def __init__(self, gan_mode="vanilla"):
        if gan_mode not in GAN_MODES:
            raise UserError(f"unknown --gan_mode {gan_mode!r}; choose one of {', '.join(GAN_MODES)}")
        self.gan_mode = gan_mode
        self._targets = {}

    def target_tensor(self, prediction, target_is_real):
        """A label tensor like `prediction` (shape, dtype, device), made once per such kind."""
        key = (bool(target_is_real), prediction.shape, prediction.dtype, prediction.device)
        target = self._targets.get(key)
        if target is None:
            target = torch.full(prediction.shape, 1.0 if target_is_real else 0.0,
                                dtype=prediction.dtype, device=prediction.device)
            self._targets[key] = target
        return target

    def __call__(self, prediction, target_is_real):
        if self.gan_mode == "wgangp":
            return -prediction.mean() if target_is_real else prediction.mean()
        return GAN_MODES[self.gan_mode](prediction, self.target_tensor(prediction, target_is_real))


def gradient_penalty(netD, real_data, fake_data, lambda_gp=10.0):
    """WGAN-GP penalty (Gulrajani et al. 2017) as pix2pix's `cal_gradient_penalty` (type "mixed",
    constant 1): at x = alpha*real + (1-alpha)*fake with one alpha ~ U[0,1) per sample, lambda_gp * mean
    over the batch of (||dD(x)/dx + 1e-16||_2 - 1)^2, differentiable into D. Returns (penalty, gradients
    as [batch, -1])."""
    alpha = torch.rand(real_data.shape[0], *([1] * (real_data.dim() - 1)),
                       device=real_data.device, dtype=real_data.dtype)
    points = (alpha * real_data + (1 - alpha) * fake_data).detach().requires_grad_(True)
    scores = netD(points)
    (gradients,) = torch.autograd.grad(outputs=scores, inputs=points,
                                       grad_outputs=torch.ones_like(scores),
                                       create_graph=True, retain_graph=True)
    gradients = gradients.reshape(real_data.shape[0], -1)
    penalty = ((gradients + 1e-16).norm(2, dim=1) - 1.0).pow(2).mean() * lambda_gp
    return penalty, gradients
