"""pix2pix's generators and discriminators, layer for layer, so pix2pix checkpoints load as they are.

`define_G` and `define_D` take pix2pix's arguments and return initialized modules on the CPU. Every
module keeps pix2pix's attribute names and `nn.Sequential` indices, so state_dict keys, shapes and order
equal junyanz/pytorch-CycleGAN-and-pix2pix's (docs/networks.md). To add a network: write its class and
add a builder to the registry dict.
"""
import functools

import torch
from torch import nn

from pix2pix_tr.errors import UserError

# Normalization layers: name -> `make(num_channels) -> nn.Module`.
NORMS = {
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    # BatchNorm over every torchrun process (CUDA); keys as batch. As in pix2pix, whose init matches class
    # names containing "BatchNorm2d", its weights keep torch's init (1, 0), not N(1, gain).
    "syncbatch": functools.partial(nn.SyncBatchNorm, affine=True, track_running_stats=True),
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "none": lambda num_channels: nn.Identity(),
}


def _norm(norm):
    """(make_norm, bias): pix2pix gives the convolutions before a norm a bias only with InstanceNorm
    (BatchNorm has its own shift; with 'none' pix2pix leaves it out too, and checkpoints follow)."""
    if norm not in NORMS:
        raise UserError(f"unknown --norm {norm!r}; choose one of {', '.join(NORMS)}")
    return NORMS[norm], norm == "instance"


# --- generators ---------------------------------------------------------------------------------


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: x -> [down -> inner levels -> up] and the skip concat(x, up) for inner levels.

    `self.model` is an nn.Sequential whose indices match pix2pix:
      outermost: [downconv, submodule, uprelu, upconv, tanh]
      innermost: [downrelu, downconv, uprelu, upconv, upnorm]
      middle:    [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm, (dropout)]
    """

    def __init__(self, outer_nc, inner_nc, *, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm="batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        make_norm, bias = _norm(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(True), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, nn.ReLU(True), up_conv, make_norm(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down_conv, make_norm(inner_nc), submodule,
                      nn.ReLU(True), up_conv, make_norm(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net: `num_downs` halvings (8 for 256 px, 7 for 128 px) down to 1x1, mirrored with skips."""

    def __init__(self, input_nc, output_nc, num_downs, ngf=64, *, norm="batch", use_dropout=False):
        super().__init__()
        if num_downs < 5:
            raise ValueError("a U-Net generator needs at least 5 downsamplings")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):  # the 512-channel middle levels carry the dropout
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        for outer_mult, inner_mult in ((4, 8), (2, 4), (1, 2)):
            block = UnetSkipConnectionBlock(ngf * outer_mult, ngf * inner_mult, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                             outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


class ResnetBlock(nn.Module):
    """x + [pad, conv3, norm, relu, (dropout), pad, conv3, norm](x), reflection padding."""

    def __init__(self, dim, *, norm="batch", use_dropout=False):
        super().__init__()
        make_norm, bias = _norm(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=bias), make_norm(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=bias), make_norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, two stride-2 downsamplings, `n_blocks` residual blocks, two transposed-conv
    upsamplings, c7s1-output_nc with tanh (Johnson et al., as in pix2pix/CycleGAN)."""

    def __init__(self, input_nc, output_nc, ngf=64, *, n_blocks=9, norm="batch", use_dropout=False):
        super().__init__()
        make_norm, bias = _norm(norm)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, bias=bias),
                  make_norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1,
                                 bias=bias),
                       make_norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm=norm, use_dropout=use_dropout) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2,
                                          padding=1, output_padding=1, bias=bias),
                       make_norm(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


# --- discriminators (they output logits: the GAN loss applies the sigmoid, if any) -------------------


class NLayerDiscriminator(nn.Module):
    """PatchGAN: n_layers stride-2 4x4 convs (channels ndf * min(2^i, 8)), one stride-1 conv, then a
    1-channel 4x4 conv. With n_layers=3 each output logit sees a 70x70 patch."""

    def __init__(self, input_nc, ndf=64, n_layers=3, *, norm="batch"):
        super().__init__()
        make_norm, bias = _norm(norm)
        layers = [nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):  # the last of these keeps the size (stride 1)
            prev_mult, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev_mult, ndf * mult, kernel_size=4, stride=2 if n < n_layers else 1,
                                 padding=1, bias=bias),
                       make_norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * mult, 1, kernel_size=4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (pixelGAN): judges every pixel's colour on its own."""

    def __init__(self, input_nc, ndf=64, *, norm="batch"):
        super().__init__()
        make_norm, bias = _norm(norm)
        self.net = nn.Sequential(nn.Conv2d(input_nc, ndf, kernel_size=1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf, ndf * 2, kernel_size=1, bias=bias), make_norm(ndf * 2),
                                 nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, kernel_size=1, bias=bias))

    def forward(self, x):
        return self.net(x)


# --- registries and initialization -------------------------------------------------------------
# name -> (class, its size argument): a U-Net halves its input num_downs times, a ResNet twice.
GENERATORS = {"unet_256": (UnetGenerator, {"num_downs": 8}), "unet_128": (UnetGenerator, {"num_downs": 7}),
              "resnet_9blocks": (ResnetGenerator, {"n_blocks": 9}),
              "resnet_6blocks": (ResnetGenerator, {"n_blocks": 6})}


def input_multiple(netG):
    """The generator's input height and width must be multiples of this to come out at their size."""
    return 2 ** GENERATORS[netG][1].get("num_downs", 2)


DISCRIMINATORS = {
    "basic": lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, 3, norm=norm),
    "n_layers": lambda i, ndf, n_layers, norm: NLayerDiscriminator(i, ndf, n_layers, norm=norm),
    "pixel": lambda i, ndf, n_layers, norm: PixelDiscriminator(i, ndf, norm=norm),
}


INITIALIZERS = {
    "normal": lambda weight, gain: nn.init.normal_(weight, 0.0, gain),
    "xavier": lambda weight, gain: nn.init.xavier_normal_(weight, gain=gain),
    "kaiming": lambda weight, gain: nn.init.kaiming_normal_(weight, a=0, mode="fan_in"),   # pix2pix: no gain
    "orthogonal": lambda weight, gain: nn.init.orthogonal_(weight, gain=gain),
}


def init_weights(net, init_type="normal", init_gain=0.02):
    """pix2pix's init: conv/linear weights by `init_type` (scaled by `init_gain`), their biases 0;
    BatchNorm weights ~ N(1, init_gain), biases 0. Returns `net`."""
    if init_type not in INITIALIZERS:
        raise UserError(f"unknown --init_type {init_type!r}; choose one of {', '.join(INITIALIZERS)}")
    init_weight = INITIALIZERS[init_type]
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                init_weight(module.weight, init_gain)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.normal_(module.weight, 1.0, init_gain)
                nn.init.zeros_(module.bias)
    return net


def define_G(input_nc, output_nc, ngf, netG, norm="batch", use_dropout=False, init_type="normal", init_gain=0.02):
    """Build and initialize a pix2pix generator (on the CPU; the caller moves it)."""
    if netG not in GENERATORS:
        raise UserError(f"unknown --netG {netG!r}; choose one of {', '.join(GENERATORS)}")
    cls, size = GENERATORS[netG]
    return init_weights(cls(input_nc, output_nc, ngf=ngf, norm=norm, use_dropout=use_dropout, **size),
                        init_type, init_gain)


def define_D(input_nc, ndf, netD, n_layers_D=3, norm="batch", init_type="normal", init_gain=0.02):
    """Build and initialize a pix2pix discriminator (on the CPU; the caller moves it). For pix2pix,
    input_nc is input_nc + output_nc: D judges the input and output images concatenated."""
    if netD not in DISCRIMINATORS:
        raise UserError(f"unknown --netD {netD!r}; choose one of {', '.join(DISCRIMINATORS)}")
    net = DISCRIMINATORS[netD](input_nc, ndf, n_layers_D, norm)
    return init_weights(net, init_type, init_gain)


def describe_networks(nets):
    """pix2pix's print_networks with --verbose: each network's architecture, then its parameter count
    in millions."""
    lines = ["---------- Networks initialized -------------"]
    for name, net in nets.items():
        lines.append(str(net))
        millions = sum(p.numel() for p in net.parameters()) / 1e6
        lines.append(f"[Network {name}] Total number of parameters : {millions:.3f} M")
    lines.append("-----------------------------------------------")
    return "\n".join(lines)


# --- loading pix2pix state dicts --------------------------------------------------------------------
class StateDictMismatch(ValueError):
    """A state dict does not fit the network; the message is one short line."""


def load_pix2pix_state_dict(net, state_dict):
    """Load a state dict written by pix2pix (any version) or by this project into `net`, strictly, as
    pix2pix's own loader does: without a DataParallel 'module.' prefix, with the `num_batches_tracked`
    counters (0) that files from before PyTorch 0.4.1 lack, without the InstanceNorm running statistics
    old pix2pix saved. Raises StateDictMismatch (one line) when keys or shapes still differ."""
    patched = {(key[len("module."):] if key.startswith("module.") else key): v for key, v in state_dict.items()}
    for name, module in net.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            counter = prefix + "num_batches_tracked"
            if counter not in patched and (prefix + "running_mean") in patched:
                patched[counter] = torch.tensor(0, dtype=torch.long)
        elif isinstance(module, nn.InstanceNorm2d) and not module.track_running_stats:
            for stat in ("running_mean", "running_var", "num_batches_tracked"):
                patched.pop(prefix + stat, None)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in expected if k not in patched]
    unexpected = [k for k in patched if k not in expected]
    reshaped = [k for k in expected if k in patched and tuple(patched[k].shape) != expected[k]]
    problems = [f"{len(keys)} {what} (first {keys[0]})" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected)) if keys]
    if reshaped:
        problems.append(f"{len(reshaped)} shape mismatches (first {reshaped[0]}: file "
                        f"{list(patched[reshaped[0]].shape)}, net {list(expected[reshaped[0]])})")
    if problems:
        raise StateDictMismatch("; ".join(problems))
    net.load_state_dict(patched, strict=True)
    return net
