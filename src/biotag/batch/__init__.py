"""``biotag batch``: annotate large inputs on Ray, resumably, without losing documents.

>>> from biotag.batch import BatchOptions, run_batch
>>> summary = run_batch(BatchOptions(["abstracts/"], "out/", workers=4, output_format="parquet"))

The driver streams the inputs (:mod:`biotag.batch.inputs`), sends batches of documents
to Ray actors that each hold one pipeline (:mod:`biotag.batch.worker`), and writes the
results as shards with a manifest (:mod:`biotag.batch.output`,
:mod:`biotag.batch.manifest`); :mod:`biotag.batch.runner` holds the fault handling.
Running the same command again resumes: finished documents are skipped. See
docs/batch.md.
"""

from biotag.batch.inputs import Item, Source, expand_inputs, read_items
from biotag.batch.manifest import FAILURES, MANIFEST, Manifest, RangeSet
from biotag.batch.output import OUTPUT_FORMATS
from biotag.batch.runner import BatchJob, BatchOptions, BatchSummary, run_batch

__all__ = [
    "FAILURES", "MANIFEST", "OUTPUT_FORMATS", "BatchJob", "BatchOptions", "BatchSummary", "Item", "Manifest",
    "RangeSet", "Source", "expand_inputs", "read_items", "run_batch",
]
