"""Pix2PixModel: the step equals pix2pix's optimize_parameters written out by hand, changes both nets,
restores D's requires_grad; NaN detection; amp/channels_last; save/load round trip in pix2pix format."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from pix2pix_tr.models.pix2pix import NonFiniteLossError, Pix2PixModel
from pix2pix_tr.models.networks import define_D, define_G


def tiny_nets(seed=0, netG="unet_128"):
    torch.manual_seed(seed)
    return define_G(3, 3, 8, netG), define_D(6, 8, "basic")


def batch(seed=1, size=128, n=1):
    gen = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(n, 3, size, size, generator=gen) * 2 - 1,
            "B": torch.rand(n, 3, size, size, generator=gen) * 2 - 1}


def make_model(netG, netD, lr=0.01, **kwargs):
    return Pix2PixModel(netG, netD, torch.optim.SGD(netG.parameters(), lr=lr),
                        torch.optim.SGD(netD.parameters(), lr=lr), **kwargs)


def pix2pix_step_by_hand(netG, netD, opt_G, opt_D, A, B, lambda_L1=100.0):
    """pix2pix's Pix2PixModel.optimize_parameters restated with plain torch (vanilla GAN)."""
    bce = torch.nn.BCEWithLogitsLoss()
    fake_B = netG(A)
    for p in netD.parameters():
        p.requires_grad = True
    opt_D.zero_grad()
    pred_fake = netD(torch.cat((A, fake_B), 1).detach())
    loss_D_fake = bce(pred_fake, torch.zeros_like(pred_fake))
    pred_real = netD(torch.cat((A, B), 1))
    loss_D_real = bce(pred_real, torch.ones_like(pred_real))
    ((loss_D_fake + loss_D_real) * 0.5).backward()
    opt_D.step()
    for p in netD.parameters():
        p.requires_grad = False
    opt_G.zero_grad()
    pred_fake = netD(torch.cat((A, fake_B), 1))
    loss_G_GAN = bce(pred_fake, torch.ones_like(pred_fake))
    loss_G_L1 = F.l1_loss(fake_B, B) * lambda_L1
    (loss_G_GAN + loss_G_L1).backward()
    opt_G.step()
    return {"G_GAN": loss_G_GAN.item(), "G_L1": loss_G_L1.item(),
            "D_real": loss_D_real.item(), "D_fake": loss_D_fake.item()}


def test_train_step_equals_pix2pix_step_by_hand():
    netG, netD = tiny_nets()
    refG, refD = copy.deepcopy(netG), copy.deepcopy(netD)
    model = make_model(netG, netD)
    data = batch()
    for _ in range(2):
        losses = model.train_step(data)
        expected = pix2pix_step_by_hand(refG, refD, torch.optim.SGD(refG.parameters(), lr=0.01),
                                        torch.optim.SGD(refD.parameters(), lr=0.01), data["A"], data["B"])
        assert set(losses) == {"G_GAN", "G_L1", "D_real", "D_fake"}
        assert all(isinstance(v, float) for v in losses.values())
        for key in expected:
            assert losses[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key
    for mine, ref in ((netG, refG), (netD, refD)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values()):
            assert torch.allclose(a, b, atol=1e-6), name


def test_train_step_changes_both_nets_and_restores_D_requires_grad():
    netG, netD = tiny_nets()
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in (("G", netG), ("D", netD))}
    model = Pix2PixModel(netG, netD, torch.optim.Adam(netG.parameters(), 2e-4, betas=(0.5, 0.999)),
                         torch.optim.Adam(netD.parameters(), 2e-4, betas=(0.5, 0.999)))
    model.train_step(batch())
    for name, net in (("G", netG), ("D", netD)):
        changed = [k for k, p in net.named_parameters() if not torch.equal(p, before[name][k])]
        assert len(changed) == len(list(net.parameters())), name  # every parameter moved
    assert all(p.requires_grad for p in netD.parameters())
    assert all(p.requires_grad for p in netG.parameters())


class StepRecorder(torch.optim.SGD):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def step(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return super().step(*args, **kwargs)


def test_optimizers_are_stepped_once_each_without_arguments():
    netG, netD = tiny_nets()
    opt_G, opt_D = StepRecorder(netG.parameters(), lr=0.01), StepRecorder(netD.parameters(), lr=0.01)
    Pix2PixModel(netG, netD, opt_G, opt_D).train_step(batch())
    assert opt_G.calls == [((), {})] and opt_D.calls == [((), {})]


@pytest.mark.parametrize("gan_mode", ["lsgan", "wgangp"])
def test_other_gan_modes_train(gan_mode):
    netG, netD = tiny_nets()
    d_before = [p.clone() for p in netD.parameters()]
    losses = make_model(netG, netD, gan_mode=gan_mode).train_step(batch())
    assert all(math.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(netD.parameters(), d_before))


def test_non_finite_loss_raises_naming_it_and_leaves_D_trainable():
    netG, netD = tiny_nets()
    model = make_model(netG, netD)
    data = batch()
    data["B"][0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="G_L1=nan") as info:
        model.train_step(data)
    assert isinstance(info.value, ArithmeticError) and info.value.losses["G_L1"] != info.value.losses["G_L1"]
    assert math.isnan(info.value.losses["G_L1"])
    assert all(p.requires_grad for p in netD.parameters())


def test_amp_and_channels_last_step_on_cpu():
    netG, netD = tiny_nets(netG="resnet_6blocks")
    model = make_model(netG, netD, amp=True, channels_last=True)
    losses = model.train_step(batch(size=64, n=2))
    assert all(math.isfinite(v) for v in losses.values())
    conv = next(m for m in netD.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert conv.weight.dtype == torch.float32  # autocast: fp32 master weights
    visuals = model.visuals()
    assert set(visuals) == {"real_A", "fake_B", "real_B"}
    assert all(v.dtype == torch.float32 and v.shape == (2, 3, 64, 64) for v in visuals.values())
