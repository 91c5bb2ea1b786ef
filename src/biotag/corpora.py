"""The benchmark corpora by name: where their files are, their format and entity types.

Every corpus lives under one data root (:func:`biotag.paths.data_root`: ``$BIOTAG_DATA``,
by default ``../shared/data``), which biotag never ships. Sentence-level IOB benchmarks
(``ner/<Corpus>/{train,devel,test}.tsv``) are registered under their usual short names
(``ncbi-disease``, ``bc2gm``...); the document-level PubTator versions, which keep concept
IDs and relations, under ``<name>-doc`` or the corpus's own name (``biored``,
``gnormplus``...). Splits are always called ``train``, ``devel`` and ``test``.

Wherever a corpus name is accepted, a path to the user's own file is accepted too
(:func:`resolve`), so ``biotag evaluate --corpus my_corpus.pubtator`` works like
``--corpus ncbi-disease``.
"""

from __future__ import annotations

import dataclasses
import difflib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from biotag import io as bio_io
from biotag import paths
from biotag.document import Document
from biotag.entity_types import DEFAULT_TYPE_MAP, TypeMap, unified_types
from biotag.errors import InputError

SPLITS = ("train", "devel", "test")


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: its reader format, split files (relative to the data root), the unified
    types it annotates and how its own labels map onto them.

    ``types`` is empty for a user's own file (:func:`resolve`), whose types are not known
    in advance; ``file`` is set only then, and every split reads it.
    """

    name: str
    format: str
    splits: Mapping[str, str]
    types: tuple[str, ...]
    label_map: Mapping[str, str | None]
    description: str = ""
    file: Path | None = field(default=None, compare=False)
    # options its reader needs, e.g. check_text=False for PubTator files whose mention
    # column disagrees with the text (kept as attributes["pubtator_text"] by the reader)
    reader_options: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def level(self) -> str:
        """``sentence`` for the IOB benchmarks, ``document`` for the others."""
        return "sentence" if self.format == "conll" else "document"

    @property
    def type_map(self) -> TypeMap:
        """The mapping :func:`read_corpus` applies with ``unify_types``: this corpus's
        labels, strictly (a label it does not declare is an error), or biotag's default
        mapping for a user's file."""
        return TypeMap(self.label_map) if self.label_map else DEFAULT_TYPE_MAP

    def type_map_for(self, model_types: Iterable[str] | None) -> TypeMap:
        """:attr:`type_map` for a model predicting ``model_types``: a label that names one of
        them maps to it (:meth:`TypeMap.keeping`), e.g. JNLPBA's ``protein`` for a model with a
        ``protein`` type."""
        return self.type_map.keeping(model_types) if model_types else self.type_map

    def types_for(self, model_types: Iterable[str] | None) -> tuple[str, ...]:
        """The types this corpus annotates, under :meth:`type_map_for` ``model_types``."""
        if not model_types or not self.label_map:
            return self.types
        return unified_types(self.label_map, self.type_map_for(model_types))

    def path(self, split: str | None, root: str | Path | None = None) -> Path:
        """The file of ``split`` under ``root`` (default: the data root); it must exist."""
        if self.file is not None:
            return self.file
        if split not in self.splits:
            wanted = "a split" if split is None else f"no split {split!r}"
            raise InputError(f"corpus {self.name!r} has {wanted}; its splits: {', '.join(self.splits)}", field="split")
        base = Path(root) if root is not None else paths.data_root()
        path = base / self.splits[split]
        if not path.is_file():
            raise InputError(
                f"corpus {self.name!r}, split {split!r}: file not found under the data root {base} "
                "(set BIOTAG_DATA to the folder holding ner/ and pubtator/)",
                path=str(path),
            )
        return path


def _spec(name: str, fmt: str, splits: Mapping[str, str], labels: tuple[str, ...], description: str) -> CorpusSpec:
    """A registry entry whose label map and types come from the unified inventory, so the
    one mapping in :mod:`biotag.entity_types` stays the single source of truth."""
    label_map = {label: DEFAULT_TYPE_MAP.unify(label) for label in labels}
    return CorpusSpec(name, fmt, dict(splits), unified_types(labels), label_map, description)


def _ner(name: str, folder: str, labels: tuple[str, ...], description: str) -> CorpusSpec:
    return _spec(name, "conll", {s: f"ner/{folder}/{s}.tsv" for s in SPLITS}, labels, description)


def _pubtator(name: str, folder: str, files: Mapping[str, str], labels: tuple[str, ...], description: str) -> CorpusSpec:
    spec = _spec(name, "pubtator", {s: f"pubtator/{folder}/{f}" for s, f in files.items()}, labels, description)
    if name in _MENTION_TEXT_MISMATCHES:
        spec = dataclasses.replace(spec, reader_options={"check_text": False})
    return spec


# Distributed files in which some mention columns differ from the text at their offsets
# (trailing spaces, typos; see io/pubtator.py): read leniently, offsets are what count.
_MENTION_TEXT_MISMATCHES = {"ncbi-disease-doc", "gnormplus", "nlm-gene", "bioid"}


_GENE_LABELS = ("Gene", "FamilyName", "DomainMotif")

_REGISTRY: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        _ner("ncbi-disease", "NCBI-disease", ("Disease",), "NCBI disease corpus, sentence-level IOB (Dogan et al. 2014)"),
        _ner("bc5cdr-chem", "BC5CDR-chem", ("Chemical",), "BioCreative V CDR chemicals, sentence-level IOB"),
        _ner("bc5cdr-disease", "BC5CDR-disease", ("Disease",), "BioCreative V CDR diseases, sentence-level IOB"),
        _ner("bc5cdr", "BC5CDR", ("Chemical", "Disease"), "BioCreative V CDR chemicals and diseases, sentence-level IOB"),
        _ner("bc2gm", "BC2GM", ("GENE",), "BioCreative II gene mention, sentence-level IOB"),
        _ner(
            "jnlpba",
            "JNLPBA",
            ("protein", "DNA", "RNA", "cell_line", "cell_type"),
            "JNLPBA 2004 (GENIA), sentence-level IOB; train.tsv rebuilt, see ner/MANIFEST.md",
        ),
        _ner("linnaeus", "linnaeus", ("Species",), "LINNAEUS species, sentence-level IOB"),
        _ner("s800", "s800", ("Species",), "S800 species, sentence-level IOB (rebuilt from the original annotations)"),
        _pubtator(
            "ncbi-disease-doc",
            "ncbi-disease",
            {"train": "NCBItrainset_corpus.txt", "devel": "NCBIdevelopset_corpus.txt", "test": "NCBItestset_corpus.txt"},
            ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention"),
            "NCBI disease corpus abstracts with MeSH/OMIM IDs",
        ),
        _pubtator(
            "bc5cdr-doc",
            "bc5cdr",
            {"train": "CDR_TrainingSet.PubTator.txt", "devel": "CDR_DevelopmentSet.PubTator.txt", "test": "CDR_TestSet.PubTator.txt"},
            ("Chemical", "Disease"),
            "BioCreative V CDR abstracts with MeSH IDs and chemical-induced-disease relations",
        ),
        _pubtator(
            "s800-doc",
            "species-s800",
            {s: f"S800_{s}.PubTator.txt" for s in SPLITS},
            ("Species",),
            "S800 abstracts with NCBI Taxonomy IDs (same split as s800)",
        ),
        _pubtator(
            "biored",
            "biored",
            {"train": "Train.PubTator", "devel": "Dev.PubTator"},
            (
                "GeneOrGeneProduct",
                "ChemicalEntity",
                "DiseaseOrPhenotypicFeature",
                "OrganismTaxon",
                "CellLine",
                "SequenceVariant",
            ),
            "BioRED abstracts, six types with IDs and relations (the test split is held out)",
        ),
        _pubtator(
            "gnormplus",
            "gnormplus",
            {"train": "GNormPlus_Train.PubTator", "test": "GNormPlus_Test.PubTator"},
            _GENE_LABELS,
            "GNormPlus genes with NCBI Gene IDs (AIONER's copy)",
        ),
        _pubtator(
            "nlm-gene",
            "nlm-gene",
            {"train": "NLMgene_Train.PubTator", "test": "NLMgene_Test.PubTator"},
            _GENE_LABELS + ("Cell", "ChromosomeLocation"),
            "NLM-Gene genes with NCBI Gene IDs (AIONER's copy)",
        ),
        _pubtator(
            "bioid",
            "bioid",
            {"train": "BioID_Train_revision.PubTator", "test": "BioID_Test_revision.PubTator"},
            ("CellLine",),
            "BioCreative VI BioID cell lines in figure captions, Cellosaurus IDs",
        ),
        _pubtator(
            "nlm-chem",
            "nlm-chem",
            {"test": "NLMchem_Test.PubTator"},
            ("Chemical", "OTHER", "NonStandardRef"),
            "NLM-Chem full texts, test split only, one block per passage",
        ),
        _pubtator(
            "tmvar",
            "tmvar/tmvar-v1",
            {"train": "train.PubTator.txt", "test": "test.PubTator.txt"},
            ("DNAMutation", "ProteinMutation", "SNP"),
            "tmVar v1 sequence variants (normalised mutation forms, no database IDs)",
        ),
    )
}


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def list_corpora() -> list[CorpusSpec]:
    """Every registered corpus, sentence-level benchmarks first."""
    return list(_REGISTRY.values())


def get_corpus(name: str) -> CorpusSpec:
    """The registered corpus ``name`` (case and ``_``/``-`` do not matter)."""
    spec = _REGISTRY.get(_key(name))
    if spec is None:
        raise _unknown(name, "unknown corpus")
    return spec


def _unknown(name: str, what: str) -> InputError:
    key = _key(name)
    close = [n for n in _REGISTRY if key and key in n][:3] or difflib.get_close_matches(key, _REGISTRY, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return InputError(f"{what} {name!r}; {hint}known corpora: {', '.join(_REGISTRY)}", field="corpus")


def corpus_path(name: str, split: str, root: str | Path | None = None) -> Path:
    """The file of a registered corpus's split; a clear InputError when it is missing."""
    return get_corpus(name).path(split, root)


def resolve(name_or_path: str | Path, *, format: str | None = None) -> CorpusSpec:
    """The registered corpus of that name, or a spec for the user's own file or folder
    (format guessed from its name unless given; every split reads that file)."""
    if isinstance(name_or_path, str) and _key(name_or_path) in _REGISTRY:
        return _REGISTRY[_key(name_or_path)]
    path = Path(name_or_path)
    if not path.exists():
        raise _unknown(str(name_or_path), "no corpus or file")
    if path.is_dir():
        split_files = {p.name.split(".", 1)[0]: p for p in sorted(path.iterdir()) if p.is_file() and p.name.split(".", 1)[0] in SPLITS}
        if split_files:  # a folder of <split>.<ext> files, like the registered corpora
            formats = {format or bio_io.guess_format(p) for p in split_files.values()}
            if len(formats) > 1:
                raise InputError(f"split files of one corpus must share a format, found {sorted(formats)}", path=str(path), field="format")
            splits = {split: str(p.resolve()) for split, p in split_files.items()}
            return CorpusSpec(path.name, formats.pop(), splits, (), {}, f"user corpus folder {path}")
    fmt = format or bio_io.guess_format(path)
    return CorpusSpec(path.name, fmt, {}, (), {}, f"user file {path}", file=path)


def read_corpus(
    name_or_path: str | Path,
    split: str | None = None,
    root: str | Path | None = None,
    unify_types: bool = False,
    *,
    type_map: TypeMap | Mapping[str, str | None] | None = None,
    **options,
) -> Iterator[Document]:
    """Stream the Documents of a corpus split (or of a user's file, any ``split``).

    A registered corpus or folder without a devel split (tmVar: train and test) reads as
    ``devel`` the tenth of its train that training holds out for it (:func:`held_out`).
    With ``unify_types`` entity types are mapped onto biotag's unified types (by
    ``type_map`` if given, else by the corpus's own label map); entities whose label maps
    to ``None`` are dropped with the relations that name them. ``options`` go to the
    format reader (``skip_bad``, ``on_error``...).
    """
    spec = resolve(name_or_path)
    if split == "devel" and spec.file is None and split not in spec.splits and "train" in spec.splits:
        train = bio_io.read(spec.path("train", root), spec.format, **{**spec.reader_options, **options})
        docs = (doc for doc in train if held_out(doc.id))
    else:
        docs = bio_io.read(spec.path(split, root), spec.format, **{**spec.reader_options, **options})
    if not unify_types:
        return docs
    mapping = spec.type_map if type_map is None else TypeMap.coerce(type_map)
    return (unify_document_types(doc, mapping) for doc in docs)


def held_out(document_id: str, tenths: int = 1) -> bool:
    """Whether a training document goes to devel for a corpus without a devel split: a fixed
    tenth, by a stable hash of its id, so every run (and ``biotag evaluate``) picks the same."""
    return zlib.crc32(document_id.encode("utf-8")) % 10 < tenths


def unify_document_types(doc: Document, type_map: TypeMap) -> Document:
    """Map ``doc``'s entity types in place with ``type_map``; entities that map to ``None``
    are removed, and so are relations naming a removed entity. Returns ``doc``."""
    kept, dropped = [], set()
    for entity in doc.entities:
        try:
            unified = type_map.unify(entity.type)
        except InputError as exc:
            raise InputError(f"entity {entity.id}: {exc.message}", document=doc.id, field="type") from None
        if unified is None:
            dropped.add(entity.id)
        else:
            entity.type = unified
            kept.append(entity)
    doc.entities = kept
    if dropped:
        doc.relations = [r for r in doc.relations if not any(a.entity_id in dropped for a in r.arguments)]
    return doc


__all__ = [
    "SPLITS",
    "CorpusSpec",
    "list_corpora",
    "get_corpus",
    "corpus_path",
    "resolve",
    "read_corpus",
    "unify_document_types",
]
