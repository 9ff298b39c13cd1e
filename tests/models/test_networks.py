"""Networks: output shapes, pix2pix parameter counts, state-dict layout and outputs equal to pix2pix's,
loading of pix2pix files (also old ones), init statistics. Tiny nets (ngf/ndf 4-8); full size on 'meta'.

The two fixtures were dumped from pix2pix's own models/networks.py run outside this repository (their
"source" fields say how); the tests compare this project's networks against them."""
import json
import math
import os

import pytest
import torch
from torch import nn

from pix2pix_tr.errors import UserError
from pix2pix_tr.models.networks import define_D, define_G, load_pix2pix_state_dict

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "pix2pix_state_dict_layout.json")
STATS = ("running_mean", "running_var", "num_batches_tracked")


def reference_layouts():
    with open(FIXTURE) as f:
        return json.load(f)["variants"]


def build_from_variant_name(name):
    """Fixture names read 'G <netG> in3 out3 ngf<k> <norm>[ dropout]' / 'D <netD> n_layers<n> in6 ndf<k> <norm>'."""
    words = name.split()
    if words[0] == "G":
        return define_G(3, 3, int(words[4][3:]), words[1], norm=words[5], use_dropout="dropout" in words)
    if words[2].startswith("in"):  # 'D basic in6 ndf64 batch'
        return define_D(int(words[2][2:]), int(words[3][3:]), words[1], norm=words[4])
    return define_D(6, int(words[4][3:]), words[1], n_layers_D=int(words[2][len("n_layers"):]), norm=words[5])


# ---- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("netG,size", [("unet_256", 256), ("unet_128", 128), ("resnet_9blocks", 64),
                                       ("resnet_6blocks", 64)])
def test_generator_maps_image_to_image_in_tanh_range(netG, size):
    torch.manual_seed(0)
    net = define_G(3, 2, 8, netG)
    out = net(torch.randn(2, 3, size, size))
    assert out.shape == (2, 2, size, size)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("netD,n_layers", [("basic", 3), ("n_layers", 2), ("n_layers", 4), ("pixel", 3)])
def test_discriminator_patch_map_shape(netD, n_layers):
    net = define_D(6, 8, netD, n_layers_D=n_layers)
    out = net(torch.randn(2, 6, 64, 64))
    if netD == "pixel":
        expected = 64  # 1x1 convolutions: one logit per pixel
    else:  # n stride-2 4x4 convs (pad 1) halve the size; the two stride-1 4x4 convs lose 1 pixel each
        expected = 64 // 2 ** n_layers - 2
    assert out.shape == (2, 1, expected, expected)


@pytest.mark.parametrize("bad", [dict(netG="unet_512"), dict(norm="group")])
def test_unknown_generator_or_norm_is_a_user_error(bad):
    kwargs = dict(input_nc=3, output_nc=3, ngf=8, netG="unet_128") | bad
    with pytest.raises(UserError, match=next(iter(bad.values()))):
        define_G(**kwargs)
    with pytest.raises(UserError, match="init_type"):
        define_D(6, 8, "basic", init_type="uniform")


# ---- pix2pix parameter counts (built on the meta device: no memory, no forward) --------------------
def test_pix2pix_parameter_counts():
    with torch.device("meta"):
        netG = define_G(3, 3, 64, "unet_256", norm="batch")
        netD = define_D(6, 64, "basic", norm="batch")
    assert sum(p.numel() for p in netG.parameters()) == 54_413_955
    assert sum(p.numel() for p in netD.parameters()) == 2_768_705


# ---- state-dict layout equals pix2pix's --------------------------------------------------------------
def test_state_dict_layout_equals_pix2pix_reference_for_every_variant():
    layouts = reference_layouts()
    assert len(layouts) >= 40
    for name, expected in layouts.items():
        with torch.device("meta"):
            net = build_from_variant_name(name)
        got = [[k, list(v.shape)] for k, v in net.state_dict().items()]
        assert got == expected, name


def random_state_from_layout(layout, *, keep_counters=True):
    gen = torch.Generator().manual_seed(1)
    state = {}
    for key, shape in layout:
        if key.endswith("num_batches_tracked"):
            if keep_counters:
                state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state


def test_old_file_without_num_batches_tracked_loads(tmp_path):
    layout = reference_layouts()["G unet_128 in3 out3 ngf8 batch"]
    saved = random_state_from_layout(layout, keep_counters=False)
    assert not any(k.endswith("num_batches_tracked") for k in saved)
    path = tmp_path / "latest_net_G.pth"
    torch.save(saved, path)
    net = load_pix2pix_state_dict(define_G(3, 3, 8, "unet_128"), torch.load(path, weights_only=True))
    state = net.state_dict()
    for key, value in saved.items():
        assert torch.equal(state[key], value), key
    counters = [v for k, v in state.items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(c) == 0 for c in counters)


def test_old_instance_norm_running_stats_and_dataparallel_prefix_are_dropped():
    net = define_G(3, 3, 8, "resnet_6blocks", norm="instance")
    state = {f"module.{k}": v.clone() + 1 for k, v in net.state_dict().items()}
    # pix2pix before 0.4 tracked InstanceNorm statistics: files carry them, current layers do not
    state["module.model.2.running_mean"] = torch.zeros(8)
    state["module.model.2.running_var"] = torch.ones(8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    load_pix2pix_state_dict(net, state)
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key] + 1), key


# ---- initialization --------------------------------------------------------------------------------
def conv_layers(net):
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_normal_init_statistics():
    torch.manual_seed(0)
    net = define_G(3, 3, 8, "unet_256", init_type="normal", init_gain=0.02)
    weights = torch.cat([m.weight.flatten() for m in conv_layers(net)])
    assert abs(weights.mean().item()) < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.03)
    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    bn_w = torch.cat([m.weight.detach() for m in bn])
    assert bn_w.mean().item() == pytest.approx(1.0, abs=0.005)
    assert bn_w.std().item() == pytest.approx(0.02, rel=0.15)
    assert all(torch.all(m.bias == 0) for m in bn)
    assert all(torch.all(m.bias == 0) for m in conv_layers(net) if m.bias is not None)


def test_gain_scales_normal_init():
    torch.manual_seed(0)
    net = define_D(6, 8, "basic", init_gain=0.1)
    weights = torch.cat([m.weight.flatten() for m in conv_layers(net)])
    assert weights.std().item() == pytest.approx(0.1, rel=0.05)


def big_conv(net):
    return max((m for m in net.modules() if isinstance(m, nn.Conv2d)), key=lambda m: m.weight.numel())


def test_xavier_init_statistics():
    torch.manual_seed(0)
    conv = big_conv(define_D(6, 16, "basic", init_type="xavier", init_gain=0.02))  # 64->128 ch, 4x4
    out_c, in_c, kh, kw = conv.weight.shape
    fan_in, fan_out = in_c * kh * kw, out_c * kh * kw
    assert conv.weight.std().item() == pytest.approx(0.02 * math.sqrt(2.0 / (fan_in + fan_out)), rel=0.05)


def test_kaiming_init_statistics_ignore_gain():
    torch.manual_seed(0)
    conv = big_conv(define_D(6, 16, "basic", init_type="kaiming", init_gain=0.02))
    _, in_c, kh, kw = conv.weight.shape
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / (in_c * kh * kw)), rel=0.05)


def test_orthogonal_init_rows_are_orthogonal_with_gain_norm():
    torch.manual_seed(0)
    conv = big_conv(define_D(6, 16, "basic", init_type="orthogonal", init_gain=0.02))
    rows = conv.weight.detach().reshape(conv.weight.shape[0], -1).double()  # 128 x 1024
    gram = rows @ rows.T
    assert torch.allclose(gram, 0.02 ** 2 * torch.eye(rows.shape[0], dtype=torch.double), atol=1e-9)


# ---- dropout ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("netG,size", [("unet_128", 128), ("resnet_6blocks", 64)])
def test_dropout_is_in_generator_when_asked(netG, size):
    torch.manual_seed(0)
    with_dropout = define_G(3, 3, 8, netG, use_dropout=True)
    without = define_G(3, 3, 8, netG, use_dropout=False)
    assert any(isinstance(m, nn.Dropout) for m in with_dropout.modules())
    assert not any(isinstance(m, nn.Dropout) for m in without.modules())
    x = torch.randn(1, 3, size, size)
    with_dropout.eval()  # running statistics: only dropout can make two passes differ
    with torch.no_grad():
        assert torch.equal(with_dropout(x), with_dropout(x))
        for m in with_dropout.modules():
            if isinstance(m, nn.Dropout):
                m.train()
        assert not torch.equal(with_dropout(x), with_dropout(x))


def test_mismatched_file_is_reported_in_one_line():
    from pix2pix_tr.models.networks import StateDictMismatch
    state = define_G(3, 3, 8, "unet_128").state_dict()
    with pytest.raises(StateDictMismatch) as info:
        load_pix2pix_state_dict(define_G(3, 3, 16, "unet_128"), state)
    assert "shape mismatches (first model.model.0.weight: file [8, 3, 4, 4], net [16, 3, 4, 4])" in str(info.value)
    with pytest.raises(StateDictMismatch, match=r"missing keys .*unexpected keys") as info:
        load_pix2pix_state_dict(define_G(3, 3, 8, "resnet_6blocks"), state)
    assert "\n" not in str(info.value)


# ---- same computation as pix2pix, not only the same layout ------------------------------------------
OUTPUTS = os.path.join(os.path.dirname(__file__), "fixtures", "pix2pix_reference_outputs.json")
OUTPUT_CASES = {  # fixture name -> (builder, input channels, size, train mode)
    "G unet_128 ngf4 batch train": (lambda: define_G(3, 3, 4, "unet_128", "batch"), 3, 128, True),
    "G unet_256 ngf4 none eval": (lambda: define_G(3, 3, 4, "unet_256", "none"), 3, 256, False),
    "G resnet_6blocks ngf4 instance train": (lambda: define_G(3, 3, 4, "resnet_6blocks", "instance"), 3, 32, True),
    "G resnet_9blocks ngf4 batch eval": (lambda: define_G(3, 3, 4, "resnet_9blocks", "batch"), 3, 32, False),
    "D basic ndf4 batch train": (lambda: define_D(6, 4, "basic", 3, "batch"), 6, 64, True),
    "D n_layers4 ndf4 instance train": (lambda: define_D(6, 4, "n_layers", 4, "instance"), 6, 64, True),
    "D pixel ndf4 batch eval": (lambda: define_D(6, 4, "pixel", 3, "batch"), 6, 16, False),
}


def deterministic_state(net, seed=123):
    """Weights drawn in state-dict order, as the fixture's reference run drew them."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen) * 0.2
    return state


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_outputs_equal_pix2pix_reference_networks_with_the_same_weights(case):
    with open(OUTPUTS) as f:
        expected = json.load(f)["cases"][case]
    build, in_c, size, train = OUTPUT_CASES[case]
    net = build()
    net.load_state_dict(deterministic_state(net), strict=True)
    net.train(train)
    x = torch.randn(2, in_c, size, size, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        out = net(x)
    assert list(out.shape) == expected["shape"]
    out = out.double().flatten()
    samples = out[torch.linspace(0, out.numel() - 1, 64).long()]
    assert torch.allclose(samples, torch.tensor(expected["samples"], dtype=torch.double), rtol=1e-4, atol=1e-4)
    assert out.sum().item() == pytest.approx(expected["sum"], rel=1e-4, abs=1e-3)
    assert (out * out).sum().item() == pytest.approx(expected["sumsq"], rel=1e-4, abs=1e-3)
