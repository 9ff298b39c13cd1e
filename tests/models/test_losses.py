"""GAN losses and the gradient penalty against hand computations in float64 (math, not torch.nn)."""
import math

import pytest
import torch

from pix2pix_tr.errors import UserError
from pix2pix_tr.models.losses import GANLoss, gradient_penalty

LOGITS = [[-2.0, -0.5, 0.0], [0.3, 1.5, 4.0]]


def prediction():
    return torch.tensor(LOGITS).reshape(1, 1, 2, 3)


def flat():
    return [x for row in LOGITS for x in row]


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_vanilla_is_binary_cross_entropy_on_logits():
    loss = GANLoss("vanilla")
    real = sum(-math.log(sigmoid(x)) for x in flat()) / 6
    fake = sum(-math.log(1.0 - sigmoid(x)) for x in flat()) / 6
    assert loss(prediction(), True).item() == pytest.approx(real, rel=1e-6)
    assert loss(prediction(), False).item() == pytest.approx(fake, rel=1e-6)


def test_lsgan_is_mean_squared_distance_to_the_label():
    loss = GANLoss("lsgan")
    assert loss(prediction(), True).item() == pytest.approx(sum((x - 1) ** 2 for x in flat()) / 6, rel=1e-6)
    assert loss(prediction(), False).item() == pytest.approx(sum(x ** 2 for x in flat()) / 6, rel=1e-6)


def test_wgangp_is_signed_mean():
    loss = GANLoss("wgangp")
    mean = sum(flat()) / 6
    assert loss(prediction(), True).item() == pytest.approx(-mean, rel=1e-6)
    assert loss(prediction(), False).item() == pytest.approx(mean, rel=1e-6)


def test_targets_follow_the_prediction_shape_and_dtype():
    loss = GANLoss("vanilla")
    for shape, dtype in (((2, 1, 30, 30), torch.float32), ((1, 1, 6, 6), torch.bfloat16)):
        pred = torch.zeros(shape, dtype=dtype)
        target = loss.target_tensor(pred, True)
        assert target.shape == pred.shape and target.dtype == dtype and target.device == pred.device
        assert torch.all(target == 1)
        assert torch.all(loss.target_tensor(pred, False) == 0)
        assert loss(pred, True).item() == pytest.approx(math.log(2), rel=1e-2)  # sigmoid(0) = 1/2


def test_unknown_gan_mode_is_a_user_error():
    with pytest.raises(UserError, match="hinge"):
        GANLoss("hinge")


class HalfSquaredNorm(torch.nn.Module):
    """D(x) = scale * 0.5 * ||x||^2 per sample, so dD/dx = scale * x (known by hand)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(1.5))

    def forward(self, x):
        return self.scale * 0.5 * x.pow(2).flatten(1).sum(1)


def test_gradient_penalty_by_hand_where_real_equals_fake():
    torch.manual_seed(0)
    real = torch.randn(3, 2, 4, 4) * 0.1
    penalty, grads = gradient_penalty(HalfSquaredNorm(), real, real.clone())   # every alpha gives x = real
    expected = 10.0 * sum((1.5 * math.sqrt(sum(v * v for v in real[i].flatten().tolist())) - 1.0) ** 2
                          for i in range(3)) / 3
    assert penalty.item() == pytest.approx(expected, rel=1e-5)
    assert grads.shape == (3, 32)


def test_gradient_penalty_mixed_uses_one_alpha_per_sample_and_reaches_D():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 2, 4, 4), torch.randn(4, 2, 4, 4)
    netD = HalfSquaredNorm()
    penalty, grads = gradient_penalty(netD, real, fake)
    # dD/dx = 1.5 x with x on the segment real..fake: recover each sample's alpha by least squares
    norms = []
    for i in range(4):
        x = grads[i].detach().double() / 1.5
        r, f = real[i].flatten().double(), fake[i].flatten().double()
        alpha = float(torch.dot(x - f, r - f) / torch.dot(r - f, r - f))
        assert 0.0 <= alpha <= 1.0
        assert torch.allclose(x, alpha * r + (1 - alpha) * f, atol=1e-5)
        norms.append(1.5 * math.sqrt(float((x * x).sum())))
    assert penalty.item() == pytest.approx(10.0 * sum((n - 1.0) ** 2 for n in norms) / 4, rel=1e-5)
    penalty.backward()  # built with create_graph: the penalty trains D
    assert netD.scale.grad is not None and netD.scale.grad.abs().item() > 0
