"""pix2pix's FCN-8s for Cityscapes as a PyTorch module, loaded from its Caffe weights and cached.

pix2pix scores Cityscapes labels->photos with an FCN-8s trained in Caffe (`fcn-8s-cityscapes.caffemodel`,
537 MB, fetched by pix2pix's scripts/eval_cityscapes/download_fcn8s.sh). `FCN8s` restates its
deploy.prototxt (scripts/eval_cityscapes/caffemodel/deploy.prototxt) layer for layer, with the Caffe
layer names as module names:

    conv1_1 (3x3, pad 100) conv1_2 pool1 | conv2_1 conv2_2 pool2 | conv3_1..3_3 pool3 |
    conv4_1..4_3 pool4 | conv5_1..5_3 pool5          VGG16: 3x3 convs (pad 1) + ReLU; 2x2 stride-2
                                                     max pools that round up (Caffe's ceil mode)
    fc6_cs 7x7 -> 4096, ReLU; fc7_cs 1x1 -> 4096, ReLU; score_fr 1x1 -> 20
    upscore2 (4x4 stride-2 deconvolution, no bias) + score_pool4 (1x1 on pool4, cropped at 5)
    upscore_pool4 (4x4 stride 2) + score_pool3 (1x1 on pool3, cropped at 9)
    upscore8 (16x16 stride 8), cropped at 31 to the input's size -> logits [N, 20, H, W]

Input: BGR pixels minus `BGR_MEAN`, unscaled (pix2pix's cityscapes.py). Output 19 is no class.
Caffe's convolution and deconvolution weights have torch's Conv2d and ConvTranspose2d layouts, so
`load_fcn8s` converts by copying, after checking every layer's presence and shape, and caches the
state dict as safetensors keyed by the .caffemodel's SHA-256 (`--segmenter_cache`).
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from evaluate import caffe
from pix2pix_tr.run import atomic
from evaluate.digests import file_sha256
from pix2pix_tr.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(REPO, "checkpoints", "segmenters", "caffe")
NUM_OUTPUTS = 20                      # 19 Cityscapes trainIds + index 19: no class
BGR_MEAN = (72.78044, 83.21195, 73.45286)
VGG_DEPTHS = (2, 2, 3, 3, 3)
VGG_WIDTHS = (64, 128, 256, 512, 512)
FC_WIDTH = 4096
CROPS = {"score_pool4": 5, "score_pool3": 9, "score": 31}
DOWNLOAD_HINT = ("pix2pix's fcn-8s-cityscapes.caffemodel (537 MB), fetched by pix2pix's "
                 "scripts/eval_cityscapes/download_fcn8s.sh")


class FCN8s(nn.Module):
    """pix2pix's Cityscapes FCN-8s. `widths` and `fc_width` exist for narrow stand-ins in tests;
    the defaults are the real network's."""

    def __init__(self, num_outputs=NUM_OUTPUTS, widths=VGG_WIDTHS, fc_width=FC_WIDTH):
        super().__init__()
        self.widths, self.fc_width = tuple(widths), fc_width
        self.blocks = []                  # VGG16's five blocks of conv names; a max pool ends each
        c_in = 3
        for block, (depth, width) in enumerate(zip(VGG_DEPTHS, widths), start=1):
            self.blocks.append([f"conv{block}_{i}" for i in range(1, depth + 1)])
            for name in self.blocks[-1]:
                setattr(self, name, nn.Conv2d(c_in, width, 3, padding=100 if name == "conv1_1" else 1))
                c_in = width
        self.fc6_cs = nn.Conv2d(c_in, fc_width, 7)
        self.fc7_cs = nn.Conv2d(fc_width, fc_width, 1)
        self.score_fr = nn.Conv2d(fc_width, num_outputs, 1)
        self.upscore2 = nn.ConvTranspose2d(num_outputs, num_outputs, 4, stride=2, bias=False)
        self.score_pool4 = nn.Conv2d(widths[3], num_outputs, 1)
        self.upscore_pool4 = nn.ConvTranspose2d(num_outputs, num_outputs, 4, stride=2, bias=False)
        self.score_pool3 = nn.Conv2d(widths[2], num_outputs, 1)
        self.upscore8 = nn.ConvTranspose2d(num_outputs, num_outputs, 16, stride=8, bias=False)

    def forward(self, x):
        """BGR-minus-mean float [N, 3, H, W] -> logits [N, 20, H, W]; any H, W >= 1 (conv1_1's
        padding of 100 keeps every crop inside its map)."""
        h, pools = x, []
        for block in self.blocks:
            for name in block:
                h = F.relu(getattr(self, name)(h))
            h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            pools.append(h)
        h = F.relu(self.fc7_cs(F.relu(self.fc6_cs(h))))
        up = self.upscore2(self.score_fr(h))
        up = up + _crop(self.score_pool4(pools[3]), up, CROPS["score_pool4"])
        up = self.upscore_pool4(up)
        up = up + _crop(self.score_pool3(pools[2]), up, CROPS["score_pool3"])
        return _crop(self.upscore8(up), x, CROPS["score"])


def _crop(t, like, offset):
    """Caffe's Crop layer (axis 2): t[..., offset:offset+H, offset:offset+W] with like's H, W."""
    h, w = like.shape[-2:]
    return t[:, :, offset:offset + h, offset:offset + w]


def preprocess(images):
    """uint8 RGB [N, 3, H, W] -> float BGR minus pix2pix's mean, unscaled (cityscapes.py preprocess)."""
    mean = torch.tensor(BGR_MEAN, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return images.flip(1).to(torch.float32).sub_(mean)


# --- Caffe -> torch ------------------------------------------------------------------------------
def _caffe_shape_matches(blob, expected):
    """Caffe's own rule: a blob with legacy num/channels/height/width matches when those equal the
    expected shape left-padded with 1s to 4-D; otherwise the shapes are equal."""
    if blob.legacy:
        return len(expected) <= 4 and tuple(blob.shape) == (1,) * (4 - len(expected)) + tuple(expected)
    return tuple(blob.shape) == tuple(expected)


def state_dict_from_caffe(net, model, source):
    """The module's state dict from a parsed .caffemodel ({layer name: [Blob]}); a UserError naming the
    first layer that is missing, has another number of blobs, or blobs of other shapes."""
    score_fr = net.get("score_fr")
    if score_fr and score_fr[0].shape:
        outputs = score_fr[0].shape[-4 if score_fr[0].legacy else 0]
        if outputs != model.score_fr.out_channels:
            hint = " (21 is PASCAL VOC's FCN-8s)" if outputs == 21 else ""
            raise UserError(f"{source} predicts {outputs} outputs (layer score_fr), pix2pix's Cityscapes "
                            f"FCN-8s predicts {model.score_fr.out_channels} (19 classes + no class): it was "
                            f"trained on other classes{hint}; pass {DOWNLOAD_HINT}")
    expected = list(model.named_children())        # the Caffe layers with weights, by their names
    missing = [name for name, _ in expected if name not in net]
    if missing:
        present = [n for n, blobs in net.items() if blobs]
        raise UserError(f"{source} has no layer {', '.join(missing[:4])}"
                        f"{f' (and {len(missing) - 4} more)' if len(missing) > 4 else ''} of pix2pix's "
                        f"FCN-8s (its layers with weights: {', '.join(present[:6]) or 'none'}"
                        f"{', ...' if len(present) > 6 else ''}); pass {DOWNLOAD_HINT}")
    state = {}
    for name, module in expected:
        params = [("weight", module.weight)] + ([("bias", module.bias)] if module.bias is not None else [])
        blobs = net[name]
        if len(blobs) != len(params):
            raise UserError(f"{source}: layer {name} has {len(blobs)} weight blob(s), pix2pix's FCN-8s "
                            f"has {len(params)}; pass {DOWNLOAD_HINT}")
        for (kind, param), blob in zip(params, blobs):
            if not _caffe_shape_matches(blob, param.shape):
                raise UserError(f"{source}: layer {name} {kind} is {'x'.join(map(str, blob.shape))}, pix2pix's "
                                f"FCN-8s has {'x'.join(map(str, param.shape))}; pass {DOWNLOAD_HINT}")
            try:
                array = blob.array()
            except caffe.CaffeFormatError as err:
                raise UserError(f"{source}: layer {name} {kind}: {err}; download the file again") from None
            state[f"{name}.{kind}"] = torch.from_numpy(array.reshape(tuple(param.shape)))
    return state


def read_net(path):
    """The parsed .caffemodel, or a one-line UserError saying why it is not one."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(256)
    text = all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    if text and head.lstrip().startswith((b"layer", b"name", b"input", b"#")):
        raise UserError(f"{path} is a text network description (a .prototxt), not the binary weights; "
                        f"pass {DOWNLOAD_HINT}")
    try:
        net = caffe.read_caffemodel(path)
    except caffe.CaffeFormatError as err:
        if "cut short" in str(err):
            raise UserError(f"{path} is truncated ({err}; the file has {size:,} bytes): download it "
                            "again") from None
        raise UserError(f"{path} is not a Caffe model ({err}); pass {DOWNLOAD_HINT}") from None
    if not any(net.values()):
        raise UserError(f"{path} is not a Caffe model with weights (no layer holds any); pass {DOWNLOAD_HINT}")
    return net


def load_fcn8s(path, *, device="cpu", cache_dir=DEFAULT_CACHE_DIR, model=None, log=print):
    """pix2pix's FCN-8s from `path` (.caffemodel) on `device`, eval mode: from the safetensors cache
    when this file (by its SHA-256) was converted before, else converted now and cached."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    model = model if model is not None else FCN8s()
    if not os.path.isfile(path):
        raise UserError(f"--segmenter {path}: no such file; use {DOWNLOAD_HINT}")
    digest = file_sha256(path)
    real = (model.widths, model.fc_width) == (VGG_WIDTHS, FC_WIDTH)          # narrow stand-ins get a tag
    tag = "" if real else "-w" + "-".join(map(str, model.widths + (model.fc_width,)))
    cached = os.path.join(cache_dir, f"fcn8s{tag}-{digest[:16]}.safetensors")
    if os.path.isfile(cached):
        try:
            model.load_state_dict(load_file(cached), strict=True)
            return model.eval().to(device)
        except (SafetensorError, OSError, RuntimeError) as err:
            log(f"{cached} is unreadable ({type(err).__name__}); converting {path} again")
    log(f"converting {path} to PyTorch (once; cached as {cached})")
    state = state_dict_from_caffe(read_net(path), model, path)
    model.load_state_dict(state, strict=True)
    try:
        with atomic.atomic_path(cached) as tmp:
            save_file({k: v.contiguous() for k, v in state.items()}, tmp,
                      metadata={"source": os.path.basename(path), "sha256": digest,
                                "converter": "pix2pix_tr evaluate/fcn8s.py"})
    except UserError as err:       # a read-only cache folder costs speed, not the run
        log(f"not cached: {err}")
    return model.eval().to(device)
