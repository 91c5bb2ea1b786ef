"""biotag: fast biomedical text mining on CPU."""

from biotag.document import Argument, Document, Entity, Link, Passage, Relation, Span
from biotag.errors import BiotagError, FormatError, InputError, ValidationError

__version__ = "0.1.0"


def load(path=None, **options):
    """Load a model directory (default: the bundled model) as a callable annotator;
    see :func:`biotag.api.load`."""
    from biotag.api import load as _load

    return _load(path, **options)


__all__ = [
    "Argument", "BiotagError", "Document", "Entity", "FormatError", "InputError", "Link",
    "Passage", "Relation", "Span", "ValidationError", "load", "__version__",
]
