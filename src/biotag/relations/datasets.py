"""Relation datasets by name, and readers that turn them into :class:`RelationExample`\\ s.

=========  =====================================================================================
name       data (under the data root, :func:`biotag.paths.data_root`)
=========  =====================================================================================
chemprot   ``relations/chemprot/{train,dev,test}.tsv.gz``: BLURB-style masked chemical-gene pairs
           (CPR:3,4,5,6,9 and ``false``); the masked arguments are restored from
           ``original/chemprot_*_entities.tsv.gz`` (and the abstracts, for overlapping pairs),
           so the same rows render in either marker style
ddi        ``relations/ddi/{train,dev,test}.tsv.gz`` (BLURB split, DDI-mechanism/effect/
           advise/int and DDI-false); sentences and argument offsets from the original XML
           in ``original/DDICorpus-2013.zip``
biored     the ``biored`` corpus of :mod:`biotag.corpora` (train, devel): document-level
           relations between concept IDs; examples are the candidate mention pairs of
           :func:`biotag.relations.candidates.candidate_pairs`, labelled with the relation
           of their concepts (``None`` when they have none)
=========  =====================================================================================

A path to a user's own corpus (a file or a folder of ``<split>.<ext>`` documents with
entities and relations, any format :mod:`biotag.io` reads) is accepted wherever a
name is; its labels and argument type pairs come from its relations.

Split names are ``train``, ``devel`` and ``test`` everywhere (``dev`` files are ``devel``).
"""

from __future__ import annotations

import gzip
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from lxml import etree

from biotag import paths
from biotag.document import Document
from biotag.errors import FormatError, InputError
from biotag.relations.examples import Mention, RelationExample

SPLIT_FILES = {"train": "train", "devel": "dev", "test": "test"}


@dataclass(frozen=True)
class RelationTask:
    """What a relation model predicts: positive ``labels``, the ``negative`` label, the
    (head type, tail type) pairs it applies to, marker names of the types, and whether a
    relation is ``symmetric`` (then the earlier argument in the text is E1)."""

    name: str
    labels: tuple[str, ...]
    negative: str
    pairs: tuple[tuple[str, str], ...]
    type_names: Mapping[str, str] = field(default_factory=dict)
    symmetric: bool = False
    description: str = ""

    @property
    def all_labels(self) -> tuple[str, ...]:
        """Every output of the classifier, the negative label first."""
        return (self.negative, *self.labels)

    def allows(self, head_type: str, tail_type: str) -> bool:
        if (head_type, tail_type) in self.pairs:
            return True
        return self.symmetric and (tail_type, head_type) in self.pairs

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "labels": list(self.labels),
            "negative": self.negative,
            "pairs": [list(p) for p in self.pairs],
            "type_names": dict(self.type_names),
            "symmetric": self.symmetric,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> "RelationTask":
        return cls(
            name=str(data["name"]),
            labels=tuple(data["labels"]),
            negative=str(data["negative"]),
            pairs=tuple((str(a), str(b)) for a, b in data["pairs"]),
            type_names=dict(data.get("type_names") or {}),
            symmetric=bool(data.get("symmetric", False)),
        )


CHEMPROT = RelationTask(
    "chemprot",
    ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"),
    "false",
    (("chemical", "gene"),),
    {"chemical": "CHEMICAL", "gene": "GENE"},
    description="ChemProt chemical-protein relations (BioCreative VI), sentence level",
)
DDI = RelationTask(
    "ddi",
    ("DDI-mechanism", "DDI-effect", "DDI-advise", "DDI-int"),
    "DDI-false",
    (("chemical", "chemical"),),
    {"chemical": "DRUG"},
    symmetric=True,
    description="DDI 2013 drug-drug interactions, BLURB split, sentence level",
)
BIORED_LABELS = (
    "Association", "Bind", "Comparison", "Conversion", "Cotreatment", "Drug_Interaction",
    "Negative_Correlation", "Positive_Correlation",
)
BIORED = RelationTask(
    "biored",
    BIORED_LABELS,
    "None",
    (  # the type pairs BioRED train relates (either order: the task is symmetric)
        ("chemical", "chemical"), ("chemical", "disease"), ("chemical", "gene"), ("chemical", "variant"),
        ("disease", "gene"), ("disease", "variant"), ("gene", "gene"), ("gene", "variant"), ("variant", "variant"),
    ),
    symmetric=True,
    description="BioRED concept-level relations, mention pairs within a sentence window",
)
TASKS = {t.name: t for t in (CHEMPROT, DDI, BIORED)}


def get_task(name: str) -> RelationTask | None:
    return TASKS.get(name.strip().lower())


def read_examples(
    dataset: str | Path, split: str, *, window: int = 1, task: RelationTask | None = None
) -> tuple[RelationTask, list[RelationExample]]:
    """The task and the examples of a dataset split (``window``: sentences per candidate
    region for document datasets, whose candidates and labels follow ``task`` when given --
    a model's task, so that devel and test are read as its training split was)."""
    given = task
    if split not in SPLIT_FILES:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_FILES)}", field="split")
    task = get_task(str(dataset)) if isinstance(dataset, str) else None
    if task is CHEMPROT:
        return task, list(read_chemprot(split))
    if task is DDI:
        return task, list(read_ddi(split))
    from biotag.corpora import read_corpus

    if task is BIORED:
        docs = list(read_corpus("biored", split, unify_types=True))
    else:
        docs = list(read_corpus(dataset, split))
        task = task_from_documents(str(Path(dataset).name), docs)
    task = given or task
    return task, document_examples(docs, task, window=window)


# -- ChemProt ---------------------------------------------------------------------
_CHEMPROT_ORIGINAL = {"train": "training", "devel": "development", "test": "test"}
_CHEMPROT_TYPES = {"CHEMICAL": "chemical", "GENE-Y": "gene", "GENE-N": "gene"}
_PLACEHOLDER = re.compile(r"@(CHEMICAL|GENE|CHEM-GENE)\$")


def _relations_dir(name: str) -> Path:
    folder = paths.data_root() / "relations" / name
    if not folder.is_dir():
        raise InputError(
            f"relation dataset {name!r} not found (set BIOTAG_DATA to the folder holding relations/)", path=str(folder)
        )
    return folder


def _tsv_rows(path: Path) -> Iterator[tuple[int, str, str, str]]:
    """``(line, index, sentence, label)`` of a pair file with header ``index sentence label``."""
    if not path.is_file():
        raise InputError("file not found", path=str(path))
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            columns = line.rstrip("\n").split("\t")
            if number == 1 and columns[0] == "index":
                continue
            if len(columns) != 3:
                raise FormatError(f"expected 3 TAB-separated fields, found {len(columns)}", path=str(path), line=number)
            yield number, columns[0], columns[1], columns[2]


def read_chemprot(split: str) -> Iterator[RelationExample]:
    folder = _relations_dir("chemprot")
    original = _CHEMPROT_ORIGINAL[split]
    suffix = "_gs" if split == "test" else ""
    entities: dict[tuple[str, str], tuple[str, int, int, str]] = {}
    with gzip.open(folder / "original" / f"chemprot_{original}_entities{suffix}.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            pmid, tid, etype, start, end, text = line.rstrip("\n").split("\t")
            entities[pmid, tid] = (_CHEMPROT_TYPES[etype], int(start), int(end), text)
    abstracts: dict[str, str] = {}
    with gzip.open(folder / "original" / f"chemprot_{original}_abstracts{suffix}.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            pmid, title, abstract = line.rstrip("\n").split("\t")
            abstracts[pmid] = title + " " + abstract
    path = folder / f"{SPLIT_FILES[split]}.tsv.gz"
    for number, index, sentence, label in _tsv_rows(path):
        pmid, chem_id, gene_id = index.split(".")
        try:
            chem, gene = entities[pmid, chem_id], entities[pmid, gene_id]
        except KeyError as error:
            raise FormatError(f"row names entity {error.args[0]} missing from the entities file", path=str(path), line=number) from None
        yield _unmask_chemprot(index, sentence, label, chem, gene, abstracts[pmid], path, number)


def _unmask_chemprot(index, sentence, label, chem, gene, abstract, path, number) -> RelationExample:
    out, pos, length = [], 0, 0
    head = tail = None
    for match in _PLACEHOLDER.finditer(sentence):
        out.append(sentence[pos : match.start()])
        length += len(sentence[pos : match.start()])
        kind = match.group(1)
        if kind == "CHEM-GENE":
            start, end = min(chem[1], gene[1]), max(chem[2], gene[2])
            covered = abstract[start:end]
            head = Mention(length + chem[1] - start, length + chem[2] - start, "chemical")
            tail = Mention(length + gene[1] - start, length + gene[2] - start, "gene")
        else:
            covered = chem[3] if kind == "CHEMICAL" else gene[3]
            m = Mention(length, length + len(covered), "chemical" if kind == "CHEMICAL" else "gene")
            head, tail = (m, tail) if kind == "CHEMICAL" else (head, m)
        out.append(covered)
        length += len(covered)
        pos = match.end()
    out.append(sentence[pos:])
    if head is None or tail is None:
        raise FormatError(f"row {index}: the sentence does not mask both arguments", path=str(path), line=number)
    return RelationExample(index, "".join(out), head, tail, label)


# -- DDI --------------------------------------------------------------------------
def _ddi_pairs(zip_path: Path) -> dict[str, tuple[str, Mention, Mention]]:
    """Pair id -> (sentence text, first argument, second argument), arguments in text order."""
    pairs: dict[str, tuple[str, Mention, Mention]] = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            if not name.endswith(".xml") or "DrugNER" in name:
                continue
            root = etree.fromstring(archive.read(name))
            for sentence in root.iter("sentence"):
                text = sentence.get("text").replace("\r", " ").replace("\n", " ").replace("\t", " ")
                spans = {}
                for entity in sentence.iter("entity"):
                    bounds = [tuple(int(x) for x in part.split("-")) for part in entity.get("charOffset").split(";")]
                    # DDI offsets are inclusive; a discontinuous mention is read as its covering span
                    spans[entity.get("id")] = (min(a for a, _ in bounds), max(b for _, b in bounds) + 1)
                for pair in sentence.iter("pair"):
                    a, b = sorted((spans[pair.get("e1")], spans[pair.get("e2")]))
                    pairs[pair.get("id")] = (text, Mention(*a, "chemical"), Mention(*b, "chemical"))
    return pairs


def read_ddi(split: str) -> Iterator[RelationExample]:
    folder = _relations_dir("ddi")
    pairs = _ddi_pairs(folder / "original" / "DDICorpus-2013.zip")
    path = folder / f"{SPLIT_FILES[split]}.tsv.gz"
    for number, index, _, label in _tsv_rows(path):
        if index not in pairs:
            raise FormatError(f"pair {index} is not in the original corpus", path=str(path), line=number)
        text, first, second = pairs[index]
        yield RelationExample(index, text, first, second, label)


# -- documents --------------------------------------------------------------------
def _argument_keys(entity) -> set[tuple[str, str]]:
    return {("E", entity.id)} | {("C", f"{link.ontology}:{link.id}") for link in entity.links}


def gold_relation_index(doc: Document) -> dict[tuple, str]:
    """``(key1, key2) -> relation type`` for a document's relations, each argument keyed
    by ``("E", entity id)`` or ``("C", concept CURIE)``."""
    index: dict[tuple, str] = {}
    for relation in doc.relations:
        if len(relation.arguments) != 2:
            continue
        keys = [("E", a.entity_id) if a.entity_id is not None else ("C", a.concept) for a in relation.arguments]
        index[tuple(keys)] = relation.type
    return index


def candidate_label(head, tail, gold: Mapping[tuple, str], task: RelationTask) -> str:
    for a in _argument_keys(head):
        for b in _argument_keys(tail):
            label = gold.get((a, b))
            if label is None and task.symmetric:
                label = gold.get((b, a))
            if label is not None:
                return label
    return task.negative


def document_examples(docs: Iterable[Document], task: RelationTask, *, window: int = 1) -> list[RelationExample]:
    """Candidate mention pairs of every document, labelled from its gold relations
    (unknown relation types count as negative)."""
    from biotag.relations.candidates import candidate_pairs, to_example

    known = set(task.labels)
    out = []
    for doc in docs:
        gold = gold_relation_index(doc)
        for candidate in candidate_pairs(doc, task, window=window):
            label = candidate_label(candidate.head, candidate.tail, gold, task)
            out.append(to_example(doc, candidate, label if label in known else task.negative))
    return out


def task_from_documents(name: str, docs: list[Document]) -> RelationTask:
    """A task read off a user's corpus: its relation types and the type pairs they link
    (concept arguments take the types of the entities carrying that concept)."""
    labels: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for doc in docs:
        concept_types: dict[str, set[str]] = {}
        for e in doc.entities:
            for link in e.links:
                concept_types.setdefault(f"{link.ontology}:{link.id}", set()).add(e.type)
        by_id = {e.id: e.type for e in doc.entities}
        for r in doc.relations:
            if len(r.arguments) != 2:
                continue
            labels.add(r.type)
            types = [
                {by_id[a.entity_id]} if a.entity_id is not None and a.entity_id in by_id else concept_types.get(a.concept or "", set())
                for a in r.arguments
            ]
            pairs.update((x, y) for x in types[0] for y in types[1])
    if not labels:
        raise InputError("the corpus has no relations to learn from", path=name, field="relations")
    return RelationTask(name, tuple(sorted(labels)), "None", tuple(sorted(pairs)))


def with_pairs(task: RelationTask, pairs: Iterable[tuple[str, str]]) -> RelationTask:
    return replace(task, pairs=tuple(tuple(p) for p in pairs))
