"""data/default.py: which dataset a run uses, and pix2pix's own prepared cityscapes folder."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data import default, synthcity
from data.aligned import AlignedDataset
from data.layout import DatasetMeta, PreparedLayout
from pix2pix_tr.errors import UserError


def write_pix2pix_cityscapes(root, n=3, size=16):
    """pix2pix's downloaded `cityscapes`: train/ val/ of <i>.jpg, photo | label, no metadata."""
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        os.makedirs(os.path.join(root, split))
        for i in range(1, n + 1):
            photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            label = np.zeros((size, size, 3), np.uint8)
            label[:, :, 0] = 128                                       # a road-coloured label
            Image.fromarray(np.concatenate([photo, label], 1)).save(os.path.join(root, split, f"{i}.jpg"))
    return root


def test_explicit_missing_dataroot(tmp_path):
    with pytest.raises(UserError, match="--dataroot .*nowhere does not exist"):
        default.resolve_dataroot(str(tmp_path / "nowhere"))


def test_pix2pix_folder_trains_and_says_fcn_needs_gtfine(tmp_path):
    root = write_pix2pix_cityscapes(str(tmp_path / "cityscapes"))
    said = []
    assert default.resolve_dataroot(root, log=said.append) == root
    assert "--direction BtoA" in said[0] and "FCN-score needs the gtFine labels" in said[0]
    ds = AlignedDataset(root, "train", direction="BtoA", load_size=16, crop_size=16, no_flip=True)
    assert [ds[i]["frame_id"] for i in range(len(ds))] == ["1", "2", "3"]
    label = ds[0]["A"]                                                 # BtoA: A = right half = label
    assert abs(label[0].mean().item() - (128 / 127.5 - 1)) < 0.05 and label[1].abs().mean() > 0.9


def test_prepared_cityscapes_is_the_default(tmp_path):
    PreparedLayout(tmp_path / "cityscapes").write_meta(DatasetMeta(
        name="cityscapes", classes=[], palette=[], image_size=[1, 1], label_size=[1, 1], splits={},
        segmenters=[]))
    said = []
    assert default.resolve_dataroot(None, str(tmp_path), log=said.append) == str(tmp_path / "cityscapes")
    assert "Cityscapes" in said[0]


def test_synthcity_is_generated_once_then_reused(tmp_path, monkeypatch):
    calls = []
    real = synthcity.generate

    def small(output_dir, log=print):
        calls.append(output_dir)
        return real(output_dir, num_train=2, num_val=1, size=32, workers=1, log=log)

    monkeypatch.setattr(synthcity, "generate", small)
    os.makedirs(tmp_path / "cityscapes")                                 # present but not prepared
    said = []
    root = default.resolve_dataroot(None, str(tmp_path), log=said.append)
    assert root == str(tmp_path / "synthcity") and calls == [root]
    assert any("generating SynthCity" in s for s in said)
    said.clear()
    assert default.resolve_dataroot(None, str(tmp_path), log=said.append) == root
    assert calls == [root] and "using SynthCity" in said[0]
    item = AlignedDataset(root, "val", load_size=32, crop_size=32)[0]
    assert item["A"].shape == (3, 32, 32) and torch.isfinite(item["B"]).all()


def test_interrupted_synthcity_says_to_rerun_its_command(tmp_path, interrupt):
    root = str(tmp_path / "synth")
    interrupt(synthcity, "_write_frames", 2)
    with pytest.raises(KeyboardInterrupt):
        synthcity.generate(root, num_train=17, num_val=1, size=32, workers=1, log=lambda *a: None)
    assert os.path.isdir(os.path.join(root, "train")) and not PreparedLayout(root).is_prepared()
    said = []
    with pytest.raises(UserError) as err:
        default.resolve_dataroot(root, log=said.append)
    assert said == [] and "\n" not in str(err.value)
    assert str(err.value).startswith(f"{root} is an unfinished preparation (no metadata.json yet: it was "
                                     f"interrupted); rerun python data/synthcity.py --output_dir {root} ")


def test_unfinished_default_cityscapes_is_not_replaced_by_synthcity(tmp_path):
    cityscapes = tmp_path / "cityscapes"
    os.makedirs(cityscapes / "labels" / "train")              # a preparation that stopped early
    os.makedirs(cityscapes / "train")
    (cityscapes / ".prepare_params.json").write_text('{"image_size": 256}')
    with pytest.raises(UserError, match=r"cityscapes is an unfinished preparation .* rerun python "
                                        r"data/prepare_cityscapes.py --gtFine_dir \.\.\."):
        default.resolve_dataroot(None, str(tmp_path), log=lambda *a: None)
    assert not (tmp_path / "synthcity").exists()
