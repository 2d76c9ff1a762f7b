"""Keras's metrics by name, accumulated over a whole epoch by torchmetrics.

    metrics=["acc", "mae", AUC(), Precision(), Recall(), "top_k_categorical_accuracy"]

Each metric sees the model's outputs as Keras gives them (probabilities, not
logits) and the labels; masked steps (Embedding(mask_zero=True), Masking) are
left out. ``result()`` covers everything since ``reset()``: an epoch's AUC is
the AUC of the epoch, not a mean of per-batch AUCs. Keras 3 does not apply
``sample_weight`` to ``metrics`` (only to ``weighted_metrics``); neither does rnnkit.
"""
from __future__ import annotations

import torch

THRESHOLDED = ("binary_accuracy", "precision", "recall")


class Metric:
    """One Keras metric: ``update(pred, y, mask)`` per batch, ``result()``, ``reset()``.

    kind: one of KINDS below; ``name``: the key in the history (as the user wrote it).
    """

    def __init__(self, kind: str, name: str | None = None, *, threshold: float = 0.5, k: int = 5,
                 curve: str = "ROC"):
        if kind not in KINDS:
            raise ValueError(f"unknown metric {kind!r}; expected one of {sorted(set(NAMES))}")
        if curve not in ("ROC", "PR"):
            raise ValueError(f"AUC curve must be 'ROC' or 'PR', got {curve!r}")
        self.kind, self.name = kind, name or kind
        self.threshold, self.k, self.curve = threshold, k, curve
        self.metric, self.seen = None, False
        self.loss_name = None   # set by compile: "acc" follows the loss, as in Keras

    def reset(self) -> None:
        if self.metric is not None:
            self.metric.reset()
        self.seen = False

    @torch.no_grad()
    def update(self, pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if mask is not None:   # (B, T) over pred (B, T, ...): keep the real steps only
            pred, y = pred[mask], (y[mask] if y.shape[:2] == mask.shape else y)
        kind = self.kind if self.kind != "accuracy" else accuracy_kind(pred, y, self.loss_name)
        if self.metric is None:
            self.metric = make(kind, pred, self.threshold, self.k, self.curve).to(pred.device)
            self.resolved = kind
        p, t = prepare(self.resolved, pred, y, self.threshold)
        self.metric.update(p, t)
        self.seen = True

    def result(self) -> float:
        if self.metric is None or not getattr(self, "seen", False):
            return float("nan")
        return float(self.metric.compute())


def accuracy_kind(pred: torch.Tensor, y: torch.Tensor, loss_name: str | None) -> str:
    """Keras's choice for "acc"/"accuracy": by the loss when it says, else by the shapes."""
    by_loss = {"binary_crossentropy": "binary_accuracy", "categorical_crossentropy": "categorical_accuracy",
               "sparse_categorical_crossentropy": "sparse_categorical_accuracy"}
    if loss_name in by_loss:
        return by_loss[loss_name]
    if pred.dim() == 1 or pred.shape[-1] == 1:
        return "binary_accuracy"
    return "sparse_categorical_accuracy" if y.dim() < pred.dim() or y.shape[-1] == 1 else "categorical_accuracy"


def make(kind: str, pred: torch.Tensor, threshold: float, k: int, curve: str):
    import torchmetrics.classification as C
    import torchmetrics.regression as R
    classes = pred.shape[-1] if pred.dim() > 1 else 1
    if kind in ("binary_accuracy",):
        return C.BinaryAccuracy()
    if kind == "precision":
        return C.BinaryPrecision()
    if kind == "recall":
        return C.BinaryRecall()
    if kind == "auc":
        return C.BinaryAUROC() if curve == "ROC" else C.BinaryAveragePrecision()
    if kind in ("categorical_accuracy", "sparse_categorical_accuracy"):
        return C.MulticlassAccuracy(num_classes=max(classes, 2), average="micro")
    if kind in ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
        return C.MulticlassAccuracy(num_classes=max(classes, 2), top_k=min(k, classes), average="micro")
    if kind == "mae":
        return R.MeanAbsoluteError()
    return R.MeanSquaredError()


def prepare(kind: str, pred: torch.Tensor, y: torch.Tensor, threshold: float):
    """(preds, target) in the form the torchmetrics class takes."""
    if kind in THRESHOLDED:   # thresholded here: torchmetrics would take values outside [0, 1] for logits
        target = y.reshape(pred.shape) if y.numel() == pred.numel() else y
        return (pred > threshold).long().flatten(), (target > threshold).long().flatten()
    if kind == "auc":
        return pred.flatten().float(), y.reshape(-1).round().long()
    if kind in ("categorical_accuracy", "sparse_categorical_accuracy"):
        target = y.argmax(-1) if kind == "categorical_accuracy" else y.reshape(pred.shape[:-1])
        return pred.argmax(-1).flatten(), target.long().flatten()
    if kind in ("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"):
        target = y.argmax(-1) if kind == "top_k_categorical_accuracy" else y.reshape(pred.shape[:-1])
        return pred.reshape(-1, pred.shape[-1]).float(), target.long().flatten()
    return pred.flatten().float(), y.reshape(-1).to(pred.dtype).float()   # mae, mse


KINDS = ("accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy", "auc", "precision",
         "recall", "mae", "mse", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy")
# Keras's names (strings in compile) -> kind
NAMES = {"acc": "accuracy", "accuracy": "accuracy", "binary_accuracy": "binary_accuracy",
         "categorical_accuracy": "categorical_accuracy", "sparse_categorical_accuracy": "sparse_categorical_accuracy",
         "AUC": "auc", "auc": "auc", "Precision": "precision", "precision": "precision", "Recall": "recall",
         "recall": "recall", "mae": "mae", "mean_absolute_error": "mae", "MeanAbsoluteError": "mae",
         "mse": "mse", "mean_squared_error": "mse", "MeanSquaredError": "mse",
         "top_k_categorical_accuracy": "top_k_categorical_accuracy",
         "sparse_top_k_categorical_accuracy": "sparse_top_k_categorical_accuracy",
         "BinaryAccuracy": "binary_accuracy", "CategoricalAccuracy": "categorical_accuracy",
         "SparseCategoricalAccuracy": "sparse_categorical_accuracy", "Accuracy": "accuracy"}


def get(metric) -> Metric:
    """A Metric from a Keras name or a Metric."""
    if isinstance(metric, Metric):
        return metric
    if not isinstance(metric, str) or metric not in NAMES:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(NAMES)} or an rnnkit.metrics object")
    kind = NAMES[metric]
    return Metric(kind, metric if metric[0].islower() else kind)


# Keras's metric classes
def AUC(num_thresholds: int = 200, curve: str = "ROC", name: str = "auc") -> Metric:
    """Area under the ROC (or PR) curve, computed exactly (Keras approximates with num_thresholds bins)."""
    return Metric("auc", name, curve=curve)


def Precision(thresholds: float = 0.5, name: str = "precision") -> Metric:
    return Metric("precision", name, threshold=thresholds)


def Recall(thresholds: float = 0.5, name: str = "recall") -> Metric:
    return Metric("recall", name, threshold=thresholds)


def BinaryAccuracy(threshold: float = 0.5, name: str = "binary_accuracy") -> Metric:
    return Metric("binary_accuracy", name, threshold=threshold)


def CategoricalAccuracy(name: str = "categorical_accuracy") -> Metric:
    return Metric("categorical_accuracy", name)


def SparseCategoricalAccuracy(name: str = "sparse_categorical_accuracy") -> Metric:
    return Metric("sparse_categorical_accuracy", name)


def TopKCategoricalAccuracy(k: int = 5, name: str = "top_k_categorical_accuracy") -> Metric:
    return Metric("top_k_categorical_accuracy", name, k=k)


def SparseTopKCategoricalAccuracy(k: int = 5, name: str = "sparse_top_k_categorical_accuracy") -> Metric:
    return Metric("sparse_top_k_categorical_accuracy", name, k=k)


def MeanAbsoluteError(name: str = "mean_absolute_error") -> Metric:
    return Metric("mae", name)


def MeanSquaredError(name: str = "mean_squared_error") -> Metric:
    return Metric("mse", name)
