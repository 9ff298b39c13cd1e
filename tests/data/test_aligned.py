"""data/aligned.py: pix2pix's preprocessing, reproducible augmentation, bad pairs."""
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from data.aligned import AlignedDataset
from data.layout import DatasetMeta, PreparedLayout
from pix2pix_tr.errors import UserError

HALF = 20


def write_pairs(root, split="train", n=6, relation="random", size=HALF, meta=False):
    """n pairs left|right; relation: 'random', 'same' (right == left), 'inverse' (right = 255-left)."""
    rng = np.random.default_rng(0)
    folder = os.path.join(root, split)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        left = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        right = {"random": rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "same": left,
                 "inverse": 255 - left}[relation]
        Image.fromarray(np.concatenate([left, right], 1)).save(os.path.join(folder, f"f{i:03d}.png"))
    if meta:
        PreparedLayout(root).write_meta(DatasetMeta(
            name="t", classes=["a"], palette=[[0, 0, 0]], image_size=[size, size],
            label_size=[size, size], splits={split: n}, segmenters=[]))
    return root


def pix2pix_reference(path, preprocess, load_size, crop_size, params, no_flip=False):
    """pix2pix's AlignedDataset + get_transform, restated with torchvision, for given params."""
    ab = Image.open(path).convert("RGB")
    w, h = ab.size
    halves = [ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))]
    x, y, flip = params
    ops = []
    if "resize" in preprocess:
        ops.append(transforms.Resize([load_size, load_size], transforms.InterpolationMode.BICUBIC))
    if "crop" in preprocess:
        ops.append(transforms.Lambda(lambda im: im.crop((x, y, x + crop_size, y + crop_size))))
    if not no_flip and flip:
        ops.append(transforms.Lambda(lambda im: im.transpose(Image.FLIP_LEFT_RIGHT)))
    ops += [transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)]
    t = transforms.Compose(ops)
    return [t(im) for im in halves]


def test_shapes_ranges_and_frame_ids(tmp_path):
    ds = AlignedDataset(write_pairs(tmp_path), load_size=24, crop_size=16)
    assert len(ds) == 6
    item = ds[2]
    assert item["A"].shape == item["B"].shape == (3, 16, 16) and item["A"].dtype == torch.float32
    assert item["A"].min() >= -1 and item["A"].max() <= 1 and item["A"].min() < -0.9
    assert item["frame_id"] == "f002" and item["A_paths"].endswith("f002.png")


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop"])
def test_matches_pix2pix_transform(tmp_path, preprocess):
    ds = AlignedDataset(write_pairs(tmp_path), preprocess=preprocess, load_size=26, crop_size=16)
    ds.set_epoch(4)
    for i in range(len(ds)):
        params = ds.transform_params(i, (HALF, HALF))
        ref_a, ref_b = pix2pix_reference(ds.paths[i], preprocess, 26, 16, params)
        item = ds[i]
        torch.testing.assert_close(item["A"], ref_a, atol=1e-6, rtol=0)
        torch.testing.assert_close(item["B"], ref_b, atol=1e-6, rtol=0)


def test_same_crop_and_flip_for_both_halves(tmp_path):
    same = AlignedDataset(write_pairs(tmp_path / "s", relation="same"), load_size=26, crop_size=16)
    inverse = AlignedDataset(write_pairs(tmp_path / "i", relation="inverse"), preprocess="crop",
                             crop_size=12)
    flips = set()
    for epoch in range(3):
        for ds in (same, inverse):
            ds.set_epoch(epoch)
        for i in range(len(same)):
            flips.add(same.transform_params(i, (HALF, HALF))[2])
            torch.testing.assert_close(same[i]["A"], same[i]["B"])
            torch.testing.assert_close(inverse[i]["A"] + inverse[i]["B"], torch.zeros(3, 12, 12),
                                       atol=1e-6, rtol=0)
    assert flips == {True, False}


def test_direction_swaps_halves(tmp_path):
    root = write_pairs(tmp_path)
    ab = AlignedDataset(root, load_size=24, crop_size=16)
    ba = AlignedDataset(root, direction="BtoA", load_size=24, crop_size=16)
    torch.testing.assert_close(ab[1]["A"], ba[1]["B"])
    torch.testing.assert_close(ab[1]["B"], ba[1]["A"])
    assert not torch.equal(ab[1]["A"], ab[1]["B"])


def _epoch(ds, epoch, workers):
    ds.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers)
    return torch.cat([b["A"] for b in loader]), sum((b["frame_id"] for b in loader), [])


def test_augmentation_independent_of_workers_and_resume(tmp_path):
    root = write_pairs(tmp_path)
    ds = AlignedDataset(root, load_size=26, crop_size=16, seed=7)
    e3_main, ids = _epoch(ds, 3, 0)
    e3_workers, ids_workers = _epoch(ds, 3, 2)
    torch.testing.assert_close(e3_main, e3_workers, atol=0, rtol=0)
    assert ids == ids_workers == [f"f{i:03d}" for i in range(6)]
    e4, _ = _epoch(ds, 4, 0)
    assert not torch.equal(e3_main, e4)
    torch.testing.assert_close(_epoch(ds, 3, 0)[0], e3_main, atol=0, rtol=0)      # round trip
    resumed = AlignedDataset(root, load_size=26, crop_size=16, seed=7, preload=True)
    torch.testing.assert_close(_epoch(resumed, 3, 0)[0], e3_main, atol=0, rtol=0)  # fresh + preload
    other_seed = AlignedDataset(root, load_size=26, crop_size=16, seed=8)
    assert not torch.equal(_epoch(other_seed, 3, 0)[0], e3_main)


def test_no_flip_scale_width_none_and_max_dataset_size(tmp_path):
    root = write_pairs(tmp_path, size=21)
    ds = AlignedDataset(root, preprocess="none", no_flip=True, max_dataset_size=3)
    assert len(ds) == 3 and ds.frame_ids == ["f000", "f001", "f002"]
    assert ds[0]["A"].shape == (3, 20, 20)                            # rounded to a multiple of 4
    first = ds[0]["A"]
    for epoch in range(4):
        ds.set_epoch(epoch)
        torch.testing.assert_close(ds[0]["A"], first)                 # no_flip, no crop: fixed
    sw = AlignedDataset(root, preprocess="scale_width", load_size=32, crop_size=16)
    assert sw[0]["A"].shape == (3, 32, 32)
    swc = AlignedDataset(root, preprocess="scale_width_and_crop", load_size=32, crop_size=16)
    assert swc[0]["B"].shape == (3, 16, 16)


# --- bad input ------------------------------------------------------------------------------
def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(UserError, match="no 'train' folder"):
        AlignedDataset(tmp_path)
    os.makedirs(tmp_path / "train")
    with pytest.raises(UserError, match="holds no images"):
        AlignedDataset(tmp_path)


def test_corrupt_pair_is_named(tmp_path):
    root = write_pairs(tmp_path)
    (tmp_path / "train" / "f003.png").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"f003.png is not a readable image") as err:
        AlignedDataset(root)
    assert "\n" not in str(err.value)


def test_truncated_pair_is_named_when_read(tmp_path):
    root = write_pairs(tmp_path)
    path = tmp_path / "train" / "f001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = AlignedDataset(root, load_size=24, crop_size=16)      # the header is intact
    ds[0]
    with pytest.raises(UserError, match=r"f001.png is not a readable image"):
        ds[1]
    with pytest.raises(UserError, match=r"f001.png is not a readable image"):
        AlignedDataset(root, load_size=24, crop_size=16, preload=True)


def test_pair_of_odd_width_is_refused(tmp_path):
    """Halves of unequal width are the one shape refused (pix2pix would silently give B a column more)."""
    root = write_pairs(tmp_path)
    Image.new("RGB", (31, 20)).save(tmp_path / "train" / "f004.png")
    with pytest.raises(UserError, match=r"f004.png is 31x20: an aligned pair is A \| B side by side, two "
                                        r"halves of equal width, so its width must be even") as err:
        AlignedDataset(root)
    assert "\n" not in str(err.value)


def test_non_square_halves_as_pix2pix_reads_them(tmp_path):
    """pix2pix's tips train on 360x256 images: a 720x256 pair (here 2 x 19x11) splits at W/2; with
    --preprocess crop the crop comes from anywhere in the 19x11 half, as in pix2pix."""
    os.makedirs(tmp_path / "train")
    rng = np.random.default_rng(1)
    pair = rng.integers(0, 256, (11, 38, 3), dtype=np.uint8)
    Image.fromarray(pair).save(tmp_path / "train" / "wide.png")
    ds = AlignedDataset(tmp_path, preprocess="none", no_flip=True)
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 12, 20)           # 11x19 rounded to multiples of 4
    ds = AlignedDataset(tmp_path, preprocess="crop", crop_size=8)
    for epoch in range(3):
        ds.set_epoch(epoch)
        x, y, flip = ds.transform_params(0, (19, 11))
        assert 0 <= x <= 19 - 8 and 0 <= y <= 11 - 8
        ref_a, ref_b = pix2pix_reference(ds.paths[0], "crop", 8, 8, (x, y, flip))
        torch.testing.assert_close(ds[0]["A"], ref_a, atol=1e-6, rtol=0)
        torch.testing.assert_close(ds[0]["B"], ref_b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ext", [".jpg", ".JPEG", ".png", ".ppm", ".bmp", ".tif", ".TIFF"])
def test_pix2pix_image_extensions(tmp_path, ext):
    os.makedirs(tmp_path / "train")
    pair = np.random.default_rng(2).integers(0, 256, (8, 16, 3), dtype=np.uint8)
    Image.fromarray(pair).save(tmp_path / "train" / f"p{ext}")
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    ds = AlignedDataset(tmp_path, preprocess="none", no_flip=True)
    assert ds.frame_ids == ["p"]
    if ext.lower() not in (".jpg", ".jpeg"):                            # lossless: the pixels as written
        torch.testing.assert_close(ds[0]["A"], torch.from_numpy(pair[:, :8]).permute(2, 0, 1).float() / 127.5 - 1)


def test_pairs_in_sub_folders(tmp_path):
    """pix2pix's make_dataset walks sub-folders; here each pair is named by its path below the
    phase folder, so equal base names in two folders stay two frames."""
    for sub in ("berlin", "bonn", "bonn/north"):
        write_pairs(tmp_path / "x", split=f"test/{sub}", n=2)
    write_pairs(tmp_path / "x", split="test", n=1)
    ds = AlignedDataset(tmp_path / "x", "test", load_size=24, crop_size=16)
    assert ds.frame_ids == ["berlin/f000", "berlin/f001", "bonn/f000", "bonn/f001", "bonn/north/f000",
                            "bonn/north/f001", "f000"]
    assert ds[4]["A_paths"].endswith(os.path.join("bonn", "north", "f000.png"))


def test_missing_phase_names_the_folders_there(tmp_path):
    write_pairs(tmp_path, split="val")
    with pytest.raises(UserError, match=r"no 'test' folder in .*: choose one with --phase"):
        AlignedDataset(tmp_path, "test")


def test_pair_disagreeing_with_metadata(tmp_path):
    root = write_pairs(tmp_path, meta=True)
    Image.new("RGB", (48, 24)).save(tmp_path / "train" / "f005.png")
    with pytest.raises(UserError, match=r"f005.png is 48x24, but this dataset's pairs are 40x20"):
        AlignedDataset(root)


@pytest.mark.parametrize("direction,nc", [("AtoB", (1, 3)), ("BtoA", (1, 3)), ("AtoB", (3, 1)), ("AtoB", (1, 1))])
def test_one_channel_side_is_grayscale_as_in_pix2pix(tmp_path, direction, nc):
    """pix2pix's AlignedDataset: get_transform(grayscale=(nc == 1)) puts Grayscale(1) before the resize
    and normalises one channel; A gets --input_nc, B --output_nc (after the direction swap)."""
    input_nc, output_nc = nc
    ds = AlignedDataset(write_pairs(tmp_path), direction=direction, load_size=26, crop_size=16,
                        input_nc=input_nc, output_nc=output_nc)
    ds.set_epoch(1)
    for i in range(len(ds)):
        x, y, flip = ds.transform_params(i, (HALF, HALF))
        ab = Image.open(ds.paths[i]).convert("RGB")
        w, h = ab.size
        left, right = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w, h))
        a, b = (left, right) if direction == "AtoB" else (right, left)
        item = ds[i]
        for key, half, channels in (("A", a, input_nc), ("B", b, output_nc)):
            ops = [transforms.Grayscale(1)] if channels == 1 else []
            ops += [transforms.Resize([26, 26], transforms.InterpolationMode.BICUBIC),
                    transforms.Lambda(lambda im: im.crop((x, y, x + 16, y + 16)))]
            if flip:
                ops.append(transforms.Lambda(lambda im: im.transpose(Image.FLIP_LEFT_RIGHT)))
            ops += [transforms.ToTensor(), transforms.Normalize((0.5,) * channels, (0.5,) * channels)]
            want = transforms.Compose(ops)(half)
            assert item[key].shape == (channels, 16, 16)
            torch.testing.assert_close(item[key], want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("flag", ["input_nc", "output_nc"])
def test_channel_counts_other_than_1_or_3_are_one_line(tmp_path, flag):
    root = write_pairs(tmp_path)
    with pytest.raises(UserError) as err:
        AlignedDataset(root, load_size=24, crop_size=16, **{flag: 4})
    assert str(err.value) == (f"the images in {root} have 3 channels (RGB) while --{flag} is 4; use --{flag} 3, "
                              "or 1 to convert them to grayscale as pix2pix does")
