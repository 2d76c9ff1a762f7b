"""keras.metrics on rnnkit (computed by torchmetrics over each epoch)."""
from ..metrics import (AUC, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError, Precision,
                       Recall, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy)

__all__ = ["AUC", "BinaryAccuracy", "CategoricalAccuracy", "MeanAbsoluteError", "MeanSquaredError", "Precision",
           "Recall", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "TopKCategoricalAccuracy"]
