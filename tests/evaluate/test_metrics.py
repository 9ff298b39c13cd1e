"""The confusion-matrix metric against hand-computed matrices and a numpy restatement of pix2pix's
eval_cityscapes (fast_hist / get_scores)."""
import numpy as np
import pytest
import torch

from evaluate.metrics import ConfusionMatrix, count_values, scores_from_matrix


def test_hand_computed_three_classes_with_ignore():
    label = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    m = ConfusionMatrix(3)
    m.update(pred, label)
    # rows = label, cols = pred 0,1,2,other; the ignored pixel (label 255) is not counted
    assert m.matrix.tolist() == [[2, 1, 0, 0],
                                 [0, 2, 0, 0],
                                 [1, 0, 1, 0]]
    s = m.scores(["a", "b", "c"])
    assert s["pixel_acc"] == pytest.approx(5 / 7)
    # class acc: a 2/3, b 2/2, c 1/2 ; IoU: a 2/(3+3-2)=1/2, b 2/(2+3-2)=2/3, c 1/(2+1-1)=1/2
    assert s["class_acc"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert s["mean_iou"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    assert s["per_class"]["b"] == {"acc": 1.0, "iou": pytest.approx(2 / 3), "pixels": 2}
    assert s["absent"] == [] and s["num_pixels"] == 7


def test_absent_class_left_out_of_means_and_listed():
    # class 2 never in the labels but predicted once: pix2pix's nanmean would average in IoU 0
    label = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 2, 1, 1])
    m = ConfusionMatrix(3)
    m.update(pred, label)
    s = m.scores(["a", "b", "c"])
    assert s["absent"] == ["c"]
    assert s["per_class"]["c"] == {"acc": None, "iou": None, "pixels": 0}
    assert s["class_acc"] == pytest.approx((1 / 2 + 1) / 2)
    assert s["mean_iou"] == pytest.approx((1 / 2 + 1) / 2)
    assert s["pixel_acc"] == pytest.approx(3 / 4)


def test_prediction_of_ignore_or_unknown_class_is_a_miss_without_false_positive():
    label = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([255, 7, 1, 1])      # 255 and 7 are no class of a 2-class dataset
    m = ConfusionMatrix(2)
    m.update(pred, label)
    assert m.matrix.tolist() == [[0, 0, 2], [0, 2, 0]]
    s = m.scores()
    assert s["per_class"]["0"]["acc"] == 0.0 and s["per_class"]["1"]["iou"] == 1.0
    assert s["pixel_acc"] == 0.5


def test_accumulates_over_batches_like_one_update():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (4, 8, 8), generator=g)
    pred = torch.randint(0, 5, (4, 8, 8), generator=g)
    one, many = ConfusionMatrix(5), ConfusionMatrix(5)
    one.update(pred, label)
    for i in range(4):
        many.update(pred[i:i + 1], label[i:i + 1])
    assert torch.equal(one.matrix, many.matrix)


def _pix2pix_fast_hist(a, b, n):          # restated from pix2pix's scripts/eval_cityscapes/util.py
    k = (a >= 0) & (a < n)
    return np.bincount(n * a[k].astype(int) + b[k], minlength=n ** 2).reshape(n, n)


def test_matches_numpy_restatement_of_pix2pix_scores_when_all_classes_present():
    rng = np.random.default_rng(1)
    n = 19
    label = rng.integers(0, n, (3, 40, 50))
    label[rng.random(label.shape) < 0.1] = 255
    pred = np.where(rng.random(label.shape) < 0.6, np.clip(label, 0, n - 1), rng.integers(0, n, label.shape))
    m = ConfusionMatrix(n)
    m.update(torch.from_numpy(pred), torch.from_numpy(label))
    hist = _pix2pix_fast_hist(label.ravel(), pred.ravel(), n)
    assert np.array_equal(m.matrix[:, :n].numpy(), hist) and int(m.matrix[:, n].sum()) == 0
    s = m.scores()
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.diag(hist).sum() / hist.sum()
        cl_acc = np.nanmean(np.diag(hist) / hist.sum(1))
        iu = np.nanmean(np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist)))
    assert s["pixel_acc"] == pytest.approx(acc)
    assert s["class_acc"] == pytest.approx(cl_acc)
    assert s["mean_iou"] == pytest.approx(iu)


def test_count_values_is_a_histogram():
    assert count_values(torch.tensor([0, 3, 3, 5, 0, 0]), 7).tolist() == [3, 0, 0, 2, 0, 1, 0]
    idx = torch.randint(0, 420, (100_000,), generator=torch.Generator().manual_seed(0), dtype=torch.int32)
    assert count_values(idx, 421).tolist() == np.bincount(idx.numpy(), minlength=421).tolist()


def test_square_matrix_and_wrong_names():
    s = scores_from_matrix([[3, 1], [0, 4]], ["x", "y"])
    assert s["pixel_acc"] == 7 / 8 and s["mean_iou"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    with pytest.raises(ValueError):
        scores_from_matrix([[1]], ["x", "y"])
