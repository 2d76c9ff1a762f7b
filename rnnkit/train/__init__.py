"""Training: the loop (Trainer), truncated BPTT, clipping, schedules, checkpoints, history.

    from rnnkit.train import Trainer, TrainConfig, StepOutput
"""
from .batching import TensorBatches, split
from .callbacks import EarlyStopping
from .checkpoint import Checkpoint, load_checkpoint, restore_model, save_checkpoint
from .config import StepOutput, TrainConfig
from .history import History, Mean
from .optim import clip_gradients, make_optimizer, make_scheduler
from .rng import seed_everything
from .tbptt import Carry, detach, time_cat, time_chunks
from .trainer import Trainer

__all__ = ["Trainer", "TrainConfig", "StepOutput", "TensorBatches", "split", "EarlyStopping", "Checkpoint",
           "load_checkpoint", "save_checkpoint", "restore_model", "History", "Mean", "clip_gradients",
           "make_optimizer", "make_scheduler", "seed_everything", "Carry", "detach", "time_cat", "time_chunks"]
