"""Fine-tuning token classifiers: configuration, data preparation and the trainer.

``python -m biotag.training CONFIG.json [--resume]`` runs :func:`train` on a
:class:`TrainConfig` JSON file.
"""

from biotag.training.config import TrainConfig
from biotag.training.trainer import evaluate_examples, train

__all__ = ["TrainConfig", "train", "evaluate_examples"]
