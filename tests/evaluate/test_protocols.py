"""evaluate/protocols.py: pix2pix's protocol on a case computed by hand (PIL's bilinear upsampling,
the BGR mean, index 19 as no class, absent classes as 0, 255 ignored, the 256x256 step of real
photos), and the SegFormers' official test configs (sizes, mmseg's sliding windows, the squashed
square never used for a hub id)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from evaluate import fcn8s, fcn_score, protocols
from evaluate.segmenters import albumentations_config
from pix2pix_tr.errors import UserError

CLASSES = [f"c{i}" for i in range(19)]


def test_pil_bilinear_upsampling_by_hand():
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 1] = 100                                     # [0 | 100] -> 4 columns
    up = protocols.upsample_like_pix2pix(image, (2, 4))
    # PIL: output centres at -0.25, 0.25, 0.75, 1.25 source px; edge weights renormalised
    assert up.dtype == np.uint8 and up[:, :, 0].tolist() == [[0, 25, 75, 100]] * 2


def test_real_photos_go_through_256x256_first():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    label = torch.zeros(40, 72, dtype=torch.uint8)
    item = {"image": torch.from_numpy(photo).permute(2, 0, 1), "label": label, "frame_id": "f"}
    gt = protocols.WithFCN8sInput([item], real_photos=True)[0][protocols.FCN8S_INPUT]
    result = protocols.WithFCN8sInput([item], real_photos=False)[0][protocols.FCN8S_INPUT]
    two_step = Image.fromarray(photo).resize((256, 256), Image.BILINEAR).resize((72, 40), Image.BILINEAR)
    one_step = Image.fromarray(photo).resize((72, 40), Image.BILINEAR)
    assert np.array_equal(gt.permute(1, 2, 0).numpy(), np.asarray(two_step))
    assert np.array_equal(result.permute(1, 2, 0).numpy(), np.asarray(one_step))
    assert not np.array_equal(np.asarray(two_step), np.asarray(one_step))


def test_bgr_mean_unscaled():
    rgb = torch.tensor([10, 20, 30], dtype=torch.uint8).view(1, 3, 1, 1)
    x = fcn8s.preprocess(rgb).view(3).tolist()
    assert x == pytest.approx([30 - 72.78044, 20 - 83.21195, 10 - 73.45286], abs=1e-5)


class BlueDecides(torch.nn.Module):
    """A stand-in FCN: predicts class floor(blue / 10) (19 = no class) from the preprocessed input,
    so the figures below depend on the resize, the channel order and the mean."""

    def forward(self, x):
        blue = x[:, 0] + fcn8s.BGR_MEAN[0]
        cls = torch.div(blue + 1e-3, 10, rounding_mode="floor").long().clamp(0, 19)
        return torch.nn.functional.one_hot(cls, 20).permute(0, 3, 1, 2).float()


def test_pix2pix_protocol_on_a_hand_computed_case():
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 0, 2], image[0, 1, 2] = 50, 190           # blue: class 5 | class 19; upsampled: 50 85 155 190
    label = torch.tensor([[5, 8, 15, 3],
                          [5, 255, 16, 18]], dtype=torch.uint8)
    # predictions per column: 5, 8, 15, 19 (no class). Evaluated pixels 7 (one 255); correct: (0,0) (0,1)
    # (0,2) (1,0). Present classes 3 5 8 15 16 18; acc 0 1 1 1 0 0; IoU 3: 0, 5: 2/2, 8: 1/1,
    # 15: 1/(1+2-1), 16: 0, 18: 0 -- the 19s are misses, false positives for no class.
    item = {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(), "label": label, "frame_id": "f"}
    evaluator = protocols.Pix2PixFCN8s("stub.caffemodel", BlueDecides(), "cpu")
    out = fcn_score.score([item], [evaluator], num_classes=19, class_names=CLASSES, device="cpu", batch_size=1,
                          num_workers=0, desc="hand")["stub.caffemodel"]
    assert out["pixel_acc"] == pytest.approx(4 / 7)
    assert out["class_acc"] == pytest.approx(3 / 19)           # all 19 classes, 13 absent ones as 0
    assert out["mean_iou"] == pytest.approx(2.5 / 19)
    assert out["per_class"]["c15"] == {"acc": 1.0, "iou": 0.5, "pixels": 1}
    assert out["per_class"]["c18"]["acc"] == 0.0 and out["per_class"]["c0"]["acc"] is None
    assert out["averaging"] == "pix2pix" and out["num_pixels"] == 7
    # the same matrix under the other rules: present classes only (6), mmseg's union rule (6 too)
    matrix = [[0] * 20 for _ in range(19)]
    for lab, pred in ((5, 5), (8, 8), (15, 15), (3, 19), (5, 5), (16, 15), (18, 19)):
        matrix[lab][pred] += 1
    assert protocols.scores(matrix, CLASSES, "present")["class_acc"] == pytest.approx(3 / 6)
    assert protocols.scores(matrix, CLASSES, "mmseg")["mean_iou"] == pytest.approx(2.5 / 6)
    matrix[0][4] = 1                                            # a class predicted but absent: IoU 0 counts
    assert protocols.scores(matrix, CLASSES, "mmseg")["mean_iou"] == pytest.approx(2.5 / 8)


def test_segformer_ids_run_at_their_official_scales():
    frame = (1024, 2048)
    table = protocols.SEGFORMER_CITYSCAPES
    ids = {"segformer-b0-512x1024-city-160k", "segformer-b0-640x1280-city-160k", "segformer-b0-768x768-city-160k",
           "segformer-b0-1024x1024-city-160k", *(f"segformer-b{i}-1024x1024-city-160k" for i in range(1, 6))}
    assert set(table) == ids
    assert table["segformer-b0-512x1024-city-160k"].input_size(frame) == (512, 1024)
    assert table["segformer-b0-512x1024-city-160k"].crop is None
    assert table["segformer-b0-640x1280-city-160k"].input_size(frame) == (640, 1280)
    b0_768 = table["segformer-b0-768x768-city-160k"]
    assert b0_768.input_size(frame) == (768, 1536)
    assert protocols.slide_windows((768, 1536), b0_768.crop, b0_768.stride) == [(0, 768, 0, 768), (0, 768, 768, 1536)]
    for i in range(0, 6):
        test = table[f"segformer-b{i}-1024x1024-city-160k"]
        assert test.input_size(frame) == frame and test.crop == (1024, 1024) and test.stride == (768, 768)
    # mmseg over 1024x2048 with a 1024 window and stride 768: x = 0, 768, and 1024 (pulled back)
    assert protocols.slide_windows(frame, (1024, 1024), (768, 768)) == \
        [(0, 1024, 0, 1024), (0, 1024, 768, 1792), (0, 1024, 1024, 2048)]
    assert protocols.slide_windows((500, 700), (1024, 1024), (768, 768)) == [(0, 500, 0, 700)]
    # mmcv's keep-ratio rescale of other frames: the image stands for a frame of the label's size
    assert table["segformer-b0-512x1024-city-160k"].input_size((64, 128)) == (512, 1024)


def test_sliding_window_averages_overlapping_logits():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 4, 5, padding=2)
    x = torch.randn(1, 3, 40, 100)
    with torch.no_grad():
        got = protocols.slide_logits(net, x, (40, 48), (40, 32))
        want, count = torch.zeros(1, 4, 40, 100), torch.zeros(1, 1, 40, 100)
        for x1 in (0, 32, 52):                                   # 0, 32, then pulled back to end at 100
            want[..., x1:x1 + 48] += net(x[..., x1:x1 + 48])
            count[..., x1:x1 + 48] += 1
    assert torch.allclose(got, want / count, atol=1e-6)
    assert not torch.allclose(got, net(x).detach(), atol=1e-3)   # the windows' borders matter


def _tiny_segformer(folder, square):
    import segmentation_models_pytorch as smp

    torch.manual_seed(0)
    model = smp.create_model(arch="segformer", encoder_name="mit_b0", encoder_weights=None, classes=19,
                             decoder_segmentation_channels=32)
    model.eval().save_pretrained(folder)
    (folder / "albumentations_config_eval.json").write_text(json.dumps(albumentations_config(square)))
    return model


def test_hub_named_segformer_gets_its_protocol_not_the_square_resize(tmp_path, monkeypatch):
    b1 = tmp_path / "segformer-b1-1024x1024-city-160k"          # as `hf download --local-dir` names it
    model = _tiny_segformer(b1, (1024, 1024))
    ev = protocols.load(str(b1), device="cpu", label_size=(1024, 2048))
    assert isinstance(ev, protocols.SegFormerOfficial)
    described = ev.protocol((1024, 2048))
    assert described["input_size"] == [1024, 2048]
    assert "sliding 1024x1024 window, stride 768" in described["description"]
    assert ev.eval_size((1024, 2048)) == (1024, 2048)          # scored at the labels' full resolution
    # the same code path at a scale a CPU test affords: window 64, stride 48 over 64x128 frames
    monkeypatch.setitem(protocols.SEGFORMER_CITYSCAPES, b1.name,
                        protocols.SegFormerTest((128, 64), crop=(64, 64), stride=(48, 48)))
    ev = protocols.load(str(b1), device="cpu", label_size=(64, 128))
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    labels = torch.zeros(1, 96, 192, dtype=torch.uint8)
    pred, lab = ev.evaluate({"image": images, "label": labels})
    assert pred.shape == (1, 96, 192) and lab is labels
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    x = (torch.nn.functional.interpolate(images.float(), size=(64, 128), mode="bilinear") - mean) / std
    with torch.no_grad():
        logits, count = torch.zeros(1, 19, 64, 128), torch.zeros(1, 1, 64, 128)
        for x1 in (0, 48, 64):
            logits[..., x1:x1 + 64] += model(x[..., x1:x1 + 64])
            count[..., x1:x1 + 64] += 1
    want = torch.nn.functional.interpolate(logits / count, size=(96, 192), mode="bilinear").argmax(1)
    assert (pred == want).float().mean() > 0.999 and len(pred.unique()) > 1


def test_other_segmenters_keep_the_native_size_and_say_when_it_squashes(tmp_path):
    folder = tmp_path / "my-segformer"
    _tiny_segformer(folder, (64, 64))
    notes = []
    ev = protocols.load(str(folder), device="cpu", label_size=(64, 128), log=notes.append)
    assert isinstance(ev, protocols.NativeSize) and ev.eval_size((64, 128)) == (64, 64)
    assert notes and "squashed" in notes[0] and "hub repo's name" in notes[0]
    ev = protocols.load(str(folder), device="cpu", label_size=(64, 128), eval_size=(32, 64))
    assert ev.eval_size((64, 128)) == (32, 64) and "--eval_size" in ev.protocol((64, 128))["description"]
    with pytest.raises(UserError, match="--eval_size does not apply to .*fcn.caffemodel"):
        protocols.load(str(tmp_path / "fcn.caffemodel"), device="cpu", label_size=(64, 128), eval_size=(32, 64))


def test_official_sizes_the_segformer_cannot_take_are_one_line(tmp_path):
    b0 = tmp_path / "segformer-b0-512x1024-city-160k"
    _tiny_segformer(b0, (512, 1024))
    with pytest.raises(UserError, match=r"resizes 500x700 frames to 512x717, which the segmenter cannot take "
                                        r"\(sides must be multiples of 32\).*pass --eval_size H W"):
        protocols.load(str(b0), device="cpu", label_size=(500, 700))
