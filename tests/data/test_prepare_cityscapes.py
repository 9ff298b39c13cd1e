"""data/prepare_cityscapes.py on a tiny tree in the official layout that the test writes itself."""
import os

import numpy as np
import pytest
from PIL import Image

from data import prepare_cityscapes as prep
from data.layout import PreparedLayout
from pix2pix_tr.errors import UserError

# A few labelIds and their trainIds, restated by hand from the Cityscapes definition.
ID_TO_TRAIN = {0: 255, 4: 255, 7: 0, 8: 1, 11: 2, 21: 8, 23: 10, 24: 11, 26: 13, 33: 18}
COLOURS = {0: (0, 0, 0), 4: (0, 0, 0), 7: (128, 64, 128), 8: (244, 35, 232), 11: (70, 70, 70),
           21: (107, 142, 35), 23: (70, 130, 180), 24: (220, 20, 60), 26: (0, 0, 142), 33: (119, 11, 32)}
FRAMES = {"train": ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"],
          "val": ["frankfurt_000000_000294", "lindau_000000_000019"]}
W, H = 64, 32


def write_frame(root, split, fid, seed):
    rng = np.random.default_rng(seed)
    city = fid.split("_")[0]
    ids = rng.choice(list(ID_TO_TRAIN), size=(H, W)).astype(np.uint8)
    lut = np.zeros((256, 3), np.uint8)
    for i, c in COLOURS.items():
        lut[i] = c
    gt = os.path.join(root, "gtFine", split, city)
    photo_dir = os.path.join(root, "leftImg8bit", split, city)
    os.makedirs(gt, exist_ok=True)
    os.makedirs(photo_dir, exist_ok=True)
    Image.fromarray(ids, "L").save(os.path.join(gt, fid + "_gtFine_labelIds.png"))
    Image.fromarray(lut[ids]).save(os.path.join(gt, fid + "_gtFine_color.png"))
    photo = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(photo).save(os.path.join(photo_dir, fid + "_leftImg8bit.png"))
    return ids, lut[ids], photo


@pytest.fixture
def official(tmp_path):
    truth = {}
    for split, fids in FRAMES.items():
        for k, fid in enumerate(fids):
            truth[fid] = write_frame(tmp_path, split, fid, hash(fid) % 1000 + k)
    return tmp_path, truth


def run(root, out, **kw):
    return prep.prepare(root / "gtFine", root / "leftImg8bit", out, image_size=16,
                        log=lambda *a: None, **kw)


def test_prepares_pairs_labels_and_metadata(official, tmp_path):
    root, truth = official
    out = tmp_path / "out"
    summary = run(root, out, workers=2)
    layout = PreparedLayout(out)
    assert layout.is_prepared() and summary == {"frames": 5, "written": 5, "skipped": 0}
    meta = layout.read_meta()
    assert meta.name == "cityscapes" and meta.splits == {"train": 3, "val": 2}
    assert meta.image_size == [16, 16] and meta.label_size == [H, W]
    assert meta.segmenters == ["smp-hub/segformer-b0-512x1024-city-160k",
                               "smp-hub/segformer-b5-1024x1024-city-160k"]
    assert meta.classes[13] == "car" and meta.palette[0] == [128, 64, 128] and len(meta.classes) == 19
    for split, fids in FRAMES.items():
        assert layout.frame_ids(split) == sorted(fids)
        for fid in fids:
            ids, colour, photo = truth[fid]
            labels = np.asarray(Image.open(layout.label_path(split, fid)))
            expected = np.vectorize(ID_TO_TRAIN.get)(ids)
            np.testing.assert_array_equal(labels, expected)
            pair = np.asarray(Image.open(layout.pair_path(split, fid)).convert("RGB")).astype(int)
            assert pair.shape == (16, 32, 3)
            for half, src in ((pair[:, :16], colour), (pair[:, 16:], photo)):   # A = label colour
                want = np.asarray(Image.fromarray(src).resize((16, 16), Image.BICUBIC)).astype(int)
                assert np.abs(half - want).mean() < 3          # JPEG q100, no subsampling
    assert not [f for f in os.listdir(out / "train") if f.startswith(".")]


def test_rerun_skips_done_frames(official, tmp_path):
    root, _ = official
    out = tmp_path / "out"
    run(root, out, workers=1)
    path = PreparedLayout(out).pair_path("train", FRAMES["train"][0])
    os.utime(path, (1, 1))
    assert run(root, out, workers=1) == {"frames": 5, "written": 0, "skipped": 5}
    assert os.stat(path).st_mtime == 1


def test_missing_photo_names_the_frame(official, tmp_path):
    root, _ = official
    os.remove(root / "leftImg8bit" / "train" / "bochum" / "bochum_000000_000313_leftImg8bit.png")
    with pytest.raises(UserError, match="no photo for bochum_000000_000313"):
        run(root, tmp_path / "out")


def test_missing_label_names_the_frame(official, tmp_path):
    root, _ = official
    os.remove(root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_color.png")
    with pytest.raises(UserError, match="no label colour image for lindau_000000_000019"):
        run(root, tmp_path / "out")


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_missing_or_empty_folder(official, tmp_path, what):
    root, _ = official
    photos = root / "leftImg8bit"
    if what == "missing":
        import shutil
        shutil.rmtree(photos / "val")
        match = "leftImg8bit/val does not exist"
    else:
        for f in (photos / "val").rglob("*.png"):
            f.unlink()
        match = "holds no"
    with pytest.raises(UserError, match=match):
        run(root, tmp_path / "out")
    assert not (tmp_path / "out" / "metadata.json").exists()


def _fails_cleanly(root, out, match):
    with pytest.raises(UserError, match=match) as err:
        run(root, out, workers=1)
    assert "\n" not in str(err.value)
    assert not PreparedLayout(out).is_prepared()
    assert [f for d, _, fs in os.walk(out) for f in fs if "tmp" in f] == []


def test_truncated_photo(official, tmp_path):
    root, _ = official
    path = root / "leftImg8bit" / "train" / "aachen" / "aachen_000001_000019_leftImg8bit.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails_cleanly(root, tmp_path / "out", "aachen_000001_000019_leftImg8bit.png is not a readable image")


def test_corrupt_label(official, tmp_path):
    root, _ = official
    path = root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_labelIds.png"
    path.write_bytes(b"not a png at all")
    _fails_cleanly(root, tmp_path / "out", "lindau_000000_000019_gtFine_labelIds.png is not a readable")


def test_colour_label_ids_are_refused_naming_the_mode(official, tmp_path):
    root, _ = official
    path = root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_labelIds.png"
    Image.open(path).convert("RGB").save(path)
    _fails_cleanly(root, tmp_path / "out", r"labelIds.png has mode RGB: a label map is one channel of integer ids "
                                           r".*; re-download or remove it")


def test_label_ids_outside_the_definition(official, tmp_path):
    root, _ = official
    path = root / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png"
    ids = np.asarray(Image.open(path)).copy()
    ids[0, 0] = 77
    Image.fromarray(ids, "L").save(path)
    _fails_cleanly(root, tmp_path / "out", r"aachen_000000_000019_gtFine_labelIds.png holds label ids \[77\]")


def test_photo_of_the_wrong_size(official, tmp_path):
    root, _ = official
    path = root / "leftImg8bit" / "val" / "frankfurt" / "frankfurt_000000_000294_leftImg8bit.png"
    Image.new("RGB", (W, H + 2)).save(path)
    _fails_cleanly(root, tmp_path / "out",
                   "frankfurt_000000_000294_leftImg8bit.png is 64x34 but its labelIds are 64x32")


def test_cli_prints_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        from pix2pix_tr.errors import run_cli
        run_cli(prep.main, ["--gtFine_dir", str(tmp_path / "nope"), "--leftImg8bit_dir", str(tmp_path),
                            "--output_dir", str(tmp_path / "out")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --gtFine_dir") and err.count("\n") == 1


def test_trainid_table_comes_from_cityscapesscripts():
    lut, defined = prep.label_id_to_train_id()
    assert {i: int(lut[i]) for i in ID_TO_TRAIN} == ID_TO_TRAIN
    assert defined[:34].all() and not defined[34:].any()


def test_image_size_zero_is_one_line(official, tmp_path, capsys):
    root, _ = official
    from pix2pix_tr.errors import run_cli
    with pytest.raises(SystemExit) as exit_:
        run_cli(prep.main, ["--gtFine_dir", str(root / "gtFine"), "--leftImg8bit_dir", str(root / "leftImg8bit"),
                            "--output_dir", str(tmp_path / "out"), "--image_size", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --image_size 0: must be a positive number") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_output_dir_that_is_a_file_is_refused_and_kept(official, tmp_path):
    root, _ = official
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    with pytest.raises(UserError) as err:
        run(root, target, workers=1)
    assert str(err.value) == (f"--output_dir {target} is an existing file, not a folder; pass a folder path "
                              "(it is created if missing)")
    assert target.read_text() == "mine"


def test_rerun_rewrites_a_zero_byte_label(official, tmp_path):
    root, truth = official
    out = tmp_path / "out"
    run(root, out, workers=1)
    layout = PreparedLayout(out)
    fid = FRAMES["val"][0]
    path = layout.label_path("val", fid)
    open(path, "wb").close()
    assert run(root, out, workers=1) == {"frames": 5, "written": 1, "skipped": 4}
    np.testing.assert_array_equal(np.asarray(Image.open(path)), np.vectorize(ID_TO_TRAIN.get)(truth[fid][0]))


def test_interrupted_preparation_is_refused_until_a_rerun_finishes_it(official, tmp_path, interrupt):
    """train/ and val/ exist but metadata.json does not: train.py must say to rerun the preparation
    (not read it as pix2pix's folder with --direction BtoA advice), and the rerun writes only the rest."""
    from data import default
    from tests.trainer_helpers import TINY_RUN, load_module

    root, _ = official
    out = tmp_path / "out"
    restore = interrupt(prep, "prepare_frame", 5)            # 3 train and 1 val frame written
    with pytest.raises(KeyboardInterrupt):
        run(root, out, workers=1)
    assert (out / "train").is_dir() and (out / "val").is_dir() and not (out / "metadata.json").exists()
    assert [f for d, _, fs in os.walk(out) for f in fs if f.startswith(".") and "tmp" in f] == []
    said = []
    with pytest.raises(UserError) as err:
        default.resolve_dataroot(str(out), log=said.append)
    assert said == []
    assert str(err.value).startswith(f"{out} is an unfinished preparation (no metadata.json yet: it was "
                                     "interrupted); rerun python data/prepare_cityscapes.py --gtFine_dir ")
    assert "\n" not in str(err.value)
    train = load_module("train")
    with pytest.raises(UserError, match="unfinished preparation.*rerun python data/prepare_cityscapes.py"):
        train.main(["--dataroot", str(out), "--checkpoints_dir", str(tmp_path / "ckpt"), *TINY_RUN])
    restore()
    assert run(root, out, workers=1) == {"frames": 5, "written": 1, "skipped": 4}   # the advice works
    assert default.resolve_dataroot(str(out), log=said.append) == str(out) and said == []
