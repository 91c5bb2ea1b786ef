"""The NER speed/accuracy benchmark of docs/benchmarks.md: ``biotag bench`` as a script.

The implementation is :mod:`biotag.bench` (so that an installed biotag has it too); this
file only forwards its arguments, e.g.::

    python benchmarks/ner_speed.py -m runs/all-types-l6/model --eval-corpus ncbi-disease -o runs/bench/main
"""

import sys

from biotag.cli import app

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="biotag")
