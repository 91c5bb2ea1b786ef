"""Pipelines of named steps over documents: sentence splitting, NER, abbreviations,
linking... built from code or a JSON config, timed per step, with per-document error
capture. See :mod:`biotag.pipeline.pipeline` and :mod:`biotag.pipeline.step`."""

from biotag.pipeline.step import Step, StepError, as_step, each_document, error_record
from biotag.pipeline.registry import build_step, known_steps, register_step
from biotag.pipeline.pipeline import Pipeline, PipelineResult, StepStats
from biotag.pipeline.config import pipeline_from_config, pipeline_to_config, read_config
from biotag.pipeline import builtin as _builtin  # registers the built-in steps
from biotag.pipeline.builtin import NerStep, default_steps

__all__ = [
    "NerStep", "Pipeline", "PipelineResult", "Step", "StepError", "StepStats", "as_step", "build_step",
    "default_steps", "each_document", "error_record", "known_steps",
    "pipeline_from_config", "pipeline_to_config", "read_config", "register_step",
]
