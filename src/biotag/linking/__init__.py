"""Entity linking: ontology parsers, compact on-disk indexes and a linker.

* :mod:`~biotag.linking.ontology` -- :class:`Concept`, the generic TSV and OBO readers;
* :mod:`~biotag.linking.sources` -- the dictionaries known by name (MEDIC, MeSH, NCBI
  Gene, NCBI Taxonomy, Cellosaurus, CL, ChEBI, MONDO, HPO, DOID, UBERON);
* :mod:`~biotag.linking.index` -- :func:`build_index`, :class:`OntologyIndex`
  (SQLite + memory-mapped numpy, versioned, opened lazily);
* :mod:`~biotag.linking.linker` -- :class:`Linker`: normalisation, exact / variant /
  3-gram candidates, type-consistent choice, composite mentions, abbreviations, NIL;
* :mod:`~biotag.linking.evaluate` -- accuracy@k on gold mentions.

Typical use::

    from biotag.linking import Linker
    linker = Linker.from_indexes()              # $BIOTAG_INDEXES or ~/.cache/biotag/indexes
    linker.link("breast cancer", "disease")     # [Link('MESH', 'D001943', ...)]
    linker.link_documents(docs)                 # adds Links to the entities in place
"""

from biotag.linking.candidates import Candidate, Reranker
from biotag.linking.index import OntologyIndex, build_index, default_index_dir, open_indexes
from biotag.linking.linker import Linker, Part
from biotag.linking.ontology import Concept, read_obo, read_ontology_file, read_tsv

__all__ = [
    "Candidate",
    "Concept",
    "Linker",
    "OntologyIndex",
    "Part",
    "Reranker",
    "build_index",
    "default_index_dir",
    "open_indexes",
    "read_obo",
    "read_ontology_file",
    "read_tsv",
]
