"""Segmentation scores from a confusion matrix accumulated on the device.

`ConfusionMatrix(num_classes)` counts (label, prediction) pairs of every evaluated pixel without
leaving the device until `.scores()`. Rows are label classes 0..K-1; columns are predicted classes
0..K-1 plus a last one, "other", for predictions outside 0..K-1: such a pixel is a miss for its
label class and a false positive for no class. Pixels labelled outside 0..K-1 (255) are not counted.

With TP_c = M[c, c], L_c = sum_j M[c, j] (label pixels of c), P_c = sum_i M[i, c] (pixels predicted c):

    pixel accuracy = sum_c TP_c / sum_c L_c      class accuracy_c = TP_c / L_c
    class IoU_c    = TP_c / (L_c + P_c - TP_c)

A class is present when L_c > 0; absent classes are listed. The class means follow one of three
rules (AVERAGING; each evaluation protocol names its own); with every class present all three give
pix2pix's eval_cityscapes figures (`fast_hist` / `get_scores`).
"""
import torch

AVERAGING = {
    "present": "class means over the classes present in the labels (absent ones listed)",
    "pix2pix": "class means over all 19 classes, an absent class counting 0 (pix2pix's get_scores)",
    "mmseg": "IoU averaged over classes in the labels or the predictions, accuracy over classes in the "
             "labels (mmseg's nanmean)",
}


class ConfusionMatrix:
    """Counts (label, prediction) pairs on `device`; `.scores(class_names)` reads them once."""

    def __init__(self, num_classes, *, device="cpu"):
        self.num_classes = k = int(num_classes)
        self._bins = k * (k + 1)   # + one last bin collects non-evaluated pixels, then dropped
        self.counts = torch.zeros(self._bins + 1, dtype=torch.int64, device=device)

    def update(self, prediction, label):
        """Add a batch: integer tensors of one shape (e.g. [N, H, W]) on the matrix's device; the
        index arithmetic runs in int32, most of the metric's cost on a CPU."""
        if prediction.shape != label.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and label {tuple(label.shape)} differ")
        k = self.num_classes
        label = label.reshape(-1).to(torch.int32)
        prediction = prediction.reshape(-1).to(torch.int32)
        prediction = torch.where((prediction >= 0) & (prediction < k), prediction, k)
        index = torch.where((label >= 0) & (label < k), label.mul_(k + 1).add_(prediction), self._bins)
        self.counts += count_values(index, self._bins + 1)

    @property
    def matrix(self):
        """K x (K+1) int64 tensor on the device: rows labels, columns predictions (+ "other")."""
        k = self.num_classes
        return self.counts[:self._bins].view(k, k + 1)

    def scores(self, class_names=None):
        """The one host sync: the scores as a plain dict (see `scores_from_matrix`)."""
        return scores_from_matrix(self.matrix.cpu().tolist(), class_names)


def count_values(index, length):
    """Histogram of the integers in `index` (all in 0..length-1) as an int64 tensor of `length`.

    A scatter-add into a tensor of known length, on every device: torch.bincount would read the
    input's max back to the host to size its output (a sync per batch on a GPU).
    """
    index = index.long()
    out = torch.zeros(length, dtype=torch.int64, device=index.device)
    return out.scatter_add_(0, index, torch.ones_like(index))


def scores_from_matrix(matrix, class_names=None, averaging="present"):
    """Scores of a K x (K+1) (or K x K) confusion matrix given as nested lists, the class means taken
    by one of AVERAGING's rules.

    Returns {pixel_acc, class_acc, mean_iou, per_class: {name: {acc, iou, pixels}}, absent: [names],
    num_pixels, averaging}. Absent classes have acc and iou None.
    """
    k = len(matrix)
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}-class matrix")
    if averaging not in AVERAGING:
        raise ValueError(f"averaging {averaging!r}; one of {sorted(AVERAGING)}")
    label_pixels = [sum(row) for row in matrix]
    predicted = [sum(matrix[i][c] for i in range(k)) for c in range(k)]
    per_class, absent, accs, ious = {}, [], [], []
    for c, name in enumerate(names):
        tp, n_label = matrix[c][c], label_pixels[c]
        union = n_label + predicted[c] - tp
        if n_label:
            per_class[name] = {"acc": tp / n_label, "iou": tp / union, "pixels": n_label}
        else:
            absent.append(name)
            per_class[name] = {"acc": None, "iou": None, "pixels": 0}
        if n_label or averaging == "pix2pix":              # an absent class counts 0 for pix2pix
            accs.append(tp / n_label if n_label else 0.0)
        if n_label or averaging == "pix2pix" or (averaging == "mmseg" and union):
            ious.append(tp / union if union else 0.0)
    total = sum(label_pixels)
    return {
        "pixel_acc": sum(matrix[c][c] for c in range(k)) / total if total else None,
        "class_acc": sum(accs) / len(accs) if accs else None,
        "mean_iou": sum(ious) / len(ious) if ious else None,
        "per_class": per_class,
        "absent": absent,
        "num_pixels": total,
        "averaging": averaging,
    }
