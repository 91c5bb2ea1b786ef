"""Knowledge distillation of biotag NER models: a trained teacher -> a smaller student.

:func:`distill` runs a :class:`DistillConfig` (``biotag distill`` on the command line);
see docs/distillation.md for the losses, the loss-weight schedule, the teacher-output
cache used for weak supervision on unlabelled text, and gradual magnitude pruning.
"""

from biotag.distill.config import DistillConfig
from biotag.distill.trainer import distill

__all__ = ["DistillConfig", "distill"]
