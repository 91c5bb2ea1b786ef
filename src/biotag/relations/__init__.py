"""Relation extraction: datasets (ChemProt, DDI, BioRED, your own corpus), candidate
pairs from documents, a marker-based sequence classifier over any local encoder, its
training, BLURB scoring, document-level extraction and ONNX export."""

from biotag.relations.datasets import RelationTask, get_task, read_examples
from biotag.relations.examples import STYLES, Mention, RelationExample, render

__all__ = ["STYLES", "Mention", "RelationExample", "RelationTask", "get_task", "read_examples", "render"]
