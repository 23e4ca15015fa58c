"""The one Ray Train loop that drives every torch model; checkpoints; training options."""
from engine.training.config import ScalingOptions, TrainOptions
from engine.training.loop import TrainingError, TrainResult, train_torch_model

__all__ = ["ScalingOptions", "TrainOptions", "TrainResult", "TrainingError", "train_torch_model"]
