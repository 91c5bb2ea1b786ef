"""Entity linking: mentions to ontology identifiers, with a score and a NIL answer.

For a mention of entity type ``t``, only the indexes serving ``t`` are asked (a disease
mention never links to a gene; in the MeSH index only concepts of type ``t``), and in
each of them:

1. **exact** -- the normalised mention equals a normalised name (score 1.0);
2. **variant** -- the loose keys are equal: plural, word order, Roman numerals, filler
   words (score :data:`VARIANT_SCORE`);
3. when neither matched, rewritten mentions (:mod:`biotag.linking.wordforms`):
   **synonym** -- one word replaced by an equivalent learned from the ontology ("liver
   tumors" -> liver neoplasms; :data:`SYNONYM_SCORE`), **tail** -- a cell line's or
   gene's generic trailing noun dropped ("HeLa cells" -> HeLa, "BRCA1 gene" -> BRCA1;
   :data:`TAIL_SCORE`), **head** -- leading modifiers
   dropped ("hemorrhagic cystitis" -> cystitis; :data:`HEAD_SCORE`, less per word);
4. **ngram** -- character 3-gram TF-IDF cosine, the nearest names (score = cosine).

Exact and variant matches rank first; the other candidates by score; ties by the
index's priority, then the
concept's rank among those sharing the name (preferred name, prior, the document's
organisms, for genes and species). A :class:`~biotag.linking.candidates.Reranker` re-scores the
candidates of mentions no exact or variant name matched. The best candidate scoring
below ``threshold`` means NIL: no link.

:meth:`Linker.resolve` adds two readings of the mention on top:

* an **abbreviation** whose definition the document holds
  (``doc.metadata["abbreviations"]``, or detected here with :mod:`biotag.abbreviations`
  when that step has not run) is linked through its long form when that scores higher;
* a **composite** mention ("breast and ovarian cancer", "BRCA1/2") is split
  (:mod:`biotag.linking.composite`) when every part links better than the whole.

Results are cached per (mention, type, context), so repeated mentions cost a dict
lookup: corpora repeat most of their mentions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from biotag.abbreviations import detect
from biotag.document import Document, Entity, Link
from biotag.entity_types import SPECIES, default_type_map
from biotag.linking import composite, wordforms
from biotag.linking.candidates import Candidate, Reranker
from biotag.linking.index import OntologyIndex, open_indexes
from biotag.linking.normalize import loose_key, loose_tokens, normalize
from biotag.linking.ontology import split_curie
from biotag.linking.sources import build_on_first_use, is_default

VARIANT_SCORE = 0.95
SYNONYM_SCORE = 0.9
TAIL_SCORE = 0.9
HEAD_SCORE = 0.8  # one leading word dropped; each further word costs HEAD_STEP
HEAD_STEP = 0.1
DEFAULT_THRESHOLD = 0.5
# A composite reading must beat the whole mention by this much (its parts are shorter,
# so their n-gram cosines run a little higher by chance).
COMPOSITE_MARGIN = 0.02
STAGES = {"exact": 0, "variant": 1}  # any other stage ranks after these, by score
RERANK_POOL = 20  # candidates a re-ranker without a `pool` attribute re-scores
MAX_CONCEPTS_PER_NAME = 25
_OTHER_ORGANISM = 1000  # order penalty of a concept of an organism the document does not name
_NGRAM_FANOUT = 4  # names fetched per wanted concept (several names share a concept)


@dataclass(slots=True)
class Part:
    """One concept-bearing part of a mention (the whole mention unless composite) and
    its candidates, best first."""

    text: str
    candidates: list[Candidate]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def to_link(candidate: Candidate) -> Link:
    prefix, local = split_curie(candidate.id)
    return Link(prefix, local, candidate.name, round(float(candidate.score), 4))


class Linker:
    """Links mentions with the indexes of ``index_dir`` (default
    :func:`~biotag.linking.index.default_index_dir`); ``ontologies`` picks some of them
    by name, else the default ones are used (one vocabulary per type, see
    :mod:`biotag.linking.sources`, and every user ontology). With neither given and
    no index in the default folder, the default indexes are built first when the
    dictionaries can be found (:func:`~biotag.linking.sources.build_on_first_use`).
    Raises an :class:`~biotag.errors.InputError` when there are none."""

    def __init__(
        self,
        index_dir: str | Path | None = None,
        ontologies: Iterable[str] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        reranker: Reranker | str | Path | None = None,
        composites: bool = True,
        abbreviations: bool = True,
        overwrite: bool = False,
        cache_size: int = 200_000,
    ) -> None:
        if index_dir is None and ontologies is None:
            # a fresh machine: the default indexes are built from the dictionaries once
            build_on_first_use()
        self.indexes: list[OntologyIndex] = open_indexes(index_dir, ontologies)
        if ontologies is None:
            self.indexes = [index for index in self.indexes if is_default(index.name)] or self.indexes
        self.threshold = threshold
        # a directory is a trained bi-encoder (biotag.linking.rerank), loaded with torch
        # only when asked for
        if isinstance(reranker, (str, Path)):
            from biotag.linking.rerank import load_reranker

            reranker = load_reranker(reranker)
        self.reranker = reranker
        if hasattr(reranker, "concept_names"):
            # a re-ranker comparing the mention with every name of a candidate asks here
            reranker.concept_names = self.concept_names
        self.composites = composites
        self.abbreviations = abbreviations
        self.overwrite = overwrite
        self._type_map = default_type_map(unknown="keep")
        # mentions repeat within and across documents, and composite readings share parts
        self._resolve_cache = _LruCache(cache_size)
        self._candidate_cache = _LruCache(cache_size)

    @classmethod
    def from_indexes(cls, dir: str | Path | None = None, ontologies: Iterable[str] | None = None, **options) -> "Linker":
        """A linker over the indexes in ``dir``: the default ones, or the named ``ontologies``."""
        return cls(dir, ontologies, **options)

    @property
    def types(self) -> list[str]:
        """The entity types some index serves."""
        return list(dict.fromkeys(t for index in self.indexes for t in index.info.types))

    def indexes_for(self, entity_type: str) -> list[OntologyIndex]:
        return [index for index in self.indexes if index.serves(entity_type)]

    def unify(self, entity_type: str) -> str:
        """biotag's type for a corpus label (``SpecificDisease`` -> ``disease``)."""
        return self._type_map.unify(entity_type) or entity_type

    # -- one name -------------------------------------------------------------------
    def candidates(self, mention: str, entity_type: str, k: int = 5, *, taxa: frozenset[int] = frozenset()) -> list[Candidate]:
        """The ``k`` best concepts for ``mention`` read as one name (no composite or
        abbreviation reading), best first, whatever their score. The list is shared
        with the cache: do not change it."""
        entity_type = self.unify(entity_type)
        key = (mention, entity_type, k, taxa)
        found = self._candidate_cache.get(key)
        if found is None:
            found = self._candidate_cache.put(key, self._candidates(mention, entity_type, k, taxa))
        return found

    def _candidates(self, mention: str, entity_type: str, k: int, taxa: frozenset[int]) -> list[Candidate]:
        normalized = normalize(mention)
        if not normalized:
            return []
        found: dict[str, Candidate] = {}
        indexes = self.indexes_for(entity_type)
        for priority, index in enumerate(indexes):
            self._string_matches(index, priority, entity_type, normalized, found, taxa)
        if not found:
            tokens = loose_tokens(normalized)
            for priority, index in enumerate(indexes):
                self._rewritten_matches(index, priority, entity_type, tokens, found, taxa)
        pool = getattr(self.reranker, "pool", RERANK_POOL) if self.reranker is not None else k
        if len(found) < k or not any(_certain(c) for c in found.values()):
            for priority, index in enumerate(self.indexes_for(entity_type)):
                self._ngram_matches(index, priority, entity_type, normalized, found, max(k, pool))
        ranked = sorted(found.values(), key=_rank)
        if self.reranker is not None and ranked and not _certain(ranked[0]):
            # the re-ranker sees its pool; candidates beyond it keep their string order
            ranked = self.reranker.rerank(mention, entity_type, ranked[:pool]) + ranked[pool:]
        _mark_homonyms(ranked[:k], found.values())
        return ranked[:k]

    def _add(self, found: dict[str, Candidate], index: OntologyIndex, concept_rows: Sequence[int], stage: str, score: float, priority: int, matched: str, taxa: frozenset[int]) -> None:
        orders = list(range(len(concept_rows)))
        if taxa and index.concept_taxon is not None:
            # the document's organisms first: genes of them, or the taxa themselves
            organisms = index.concept_taxon[np.asarray(concept_rows, dtype=np.int64)].tolist()
            orders = [order + (0 if organism in taxa else _OTHER_ORGANISM) for order, organism in zip(orders, organisms)]
        # a name can denote hundreds of concepts ("C. albicans"): the best few are enough
        for order, row in sorted(zip(orders, concept_rows))[:MAX_CONCEPTS_PER_NAME]:
            record = index.concept_record(row)
            candidate = Candidate(record.id, record.name, score, stage, index.name, matched, priority, order, record.alt_ids)
            current = found.get(record.id)
            if current is None or _rank(candidate) < _rank(current):
                found[record.id] = candidate

    def _string_matches(self, index: OntologyIndex, priority: int, entity_type: str, normalized: str, found: dict, taxa: frozenset[int]) -> None:
        mask = index.type_mask(entity_type)
        row = index.exact(normalized)
        if row is not None:
            self._add(found, index, index.concepts_of(row, mask), "exact", 1.0, priority, normalized, taxa)
        for _, row, text in index.variants([loose_key(normalized)]):
            self._add(found, index, index.concepts_of(row, mask), "variant", VARIANT_SCORE, priority, text, taxa)

    def _rewritten_matches(self, index: OntologyIndex, priority: int, entity_type: str, tokens: list[str], found: dict, taxa: frozenset[int]) -> None:
        mask = index.type_mask(entity_type)
        readings = {key: ("tail", TAIL_SCORE) for key in wordforms.generic_tail_readings(tokens, self.unify(entity_type))}
        for key in wordforms.substitutions(tokens, index.equivalents):
            readings.setdefault(key, ("synonym", SYNONYM_SCORE))
        for key, dropped in wordforms.head_readings(tokens):
            readings.setdefault(key, ("head", HEAD_SCORE - HEAD_STEP * (dropped - 1)))
        for key, row, text in index.variants(list(readings)):
            stage, score = readings[key]
            self._add(found, index, index.concepts_of(row, mask), stage, score, priority, text, taxa)

    def _ngram_matches(self, index: OntologyIndex, priority: int, entity_type: str, normalized: str, found: dict, k: int) -> None:
        mask = index.type_mask(entity_type)
        rows, scores = index.search(normalized, mask, k * _NGRAM_FANOUT)
        if not rows.size:
            return
        texts = index.texts(rows.tolist())
        for row, score in zip(rows.tolist(), scores.tolist()):
            self._add(found, index, index.concepts_of(row, mask)[:k], "ngram", score, priority, texts.get(row, ""), frozenset())

    def concept_names(self, candidate: Candidate) -> list[str]:
        """Every name of a candidate's concept in its index (empty when the index is
        not one of this linker's)."""
        index = next((i for i in self.indexes if i.name == candidate.ontology), None)
        return index.synonyms(candidate.id) if index is not None else []

    def link(self, mention: str, entity_type: str, k: int = 5) -> list[Link]:
        """Up to ``k`` links for ``mention`` read as one name, best first; empty (NIL)
        when even the best scores below the threshold."""
        return [to_link(c) for c in self.candidates(mention, entity_type, k) if c.score >= self.threshold]

    # -- a mention in context -------------------------------------------------------
    def resolve(self, mention: str, entity_type: str, k: int = 5, *, long_form: str | None = None, taxa: frozenset[int] = frozenset()) -> list[Part]:
        """The parts of ``mention`` (one unless it is composite) with their ``k`` best
        candidates; ``long_form`` is the definition of a mention that is an
        abbreviation, ``taxa`` the organisms of the document (for genes)."""
        entity_type = self.unify(entity_type)
        key = (mention, entity_type, k, long_form, taxa)
        parts = self._resolve_cache.get(key)
        if parts is None:
            parts = self._resolve_cache.put(key, self._resolve(mention, entity_type, k, long_form, taxa))
        return parts

    def clear_cache(self) -> None:
        self._resolve_cache.clear()
        self._candidate_cache.clear()

    def _resolve(self, mention: str, entity_type: str, k: int, long_form: str | None, taxa: frozenset[int]) -> list[Part]:
        whole = Part(mention, self.candidates(mention, entity_type, k, taxa=taxa))
        if long_form and self.abbreviations:
            expanded = self._resolve(long_form, entity_type, k, None, taxa)
            if _score(expanded) > _score([whole]):
                return expanded
        if not self.composites or (whole.best is not None and _certain(whole.best)) or not composite.maybe_composite(mention):
            return [whole]
        best, best_score = [whole], _score([whole]) + COMPOSITE_MARGIN
        for reading in composite.readings(mention):
            parts = [Part(text, self.candidates(text, entity_type, k, taxa=taxa)) for text in reading]
            if _score(parts) > best_score:
                best, best_score = parts, _score(parts)
        return _distinct(best)

    def link_documents(self, docs: list[Document]) -> list[Document]:
        """Add links to the entities of ``docs`` in place (entities that have links
        already are left alone unless ``overwrite``) and return them. Species are
        linked first, so gene mentions prefer the genes of the document's organisms."""
        served = set(self.types)
        for doc in docs:
            long_forms = abbreviation_long_forms(doc) if self.abbreviations else {}
            todo = [e for e in doc.entities if (self.overwrite or not e.links) and self.unify(e.type) in served]
            taxa = set(document_taxa(doc.entities))
            # species in text order, each seeing the organisms named before it
            # ("Candida albicans ... C. albicans"); then the rest, seeing them all
            for entity in sorted((e for e in todo if self.unify(e.type) == SPECIES), key=lambda e: e.start):
                self._link_entity(entity, long_forms.get(entity.text), frozenset(taxa))
                taxa.update(document_taxa([entity]))
            everything = frozenset(taxa)
            for entity in todo:
                if self.unify(entity.type) != SPECIES:
                    self._link_entity(entity, long_forms.get(entity.text), everything)
        return docs

    def _link_entity(self, entity: Entity, long_form: str | None, taxa: frozenset[int]) -> None:
        links: list[Link] = []
        for part in self.resolve(entity.text, entity.type, 1, long_form=long_form, taxa=taxa):
            best = part.best
            if best is not None and best.score >= self.threshold and all(best.id != f"{l.ontology}:{l.id}" for l in links):
                links.append(to_link(best))
        entity.links = links

    __call__ = link_documents


def _mark_homonyms(chosen: list[Candidate], candidates: Iterable[Candidate]) -> None:
    """Tell each chosen candidate which other candidates its matched name also names."""
    by_name: dict[str, list[str]] = {}
    for candidate in candidates:
        by_name.setdefault(candidate.matched, []).append(candidate.id)
    for candidate in chosen:
        candidate.homonyms = tuple(i for i in by_name[candidate.matched] if i != candidate.id)[:MAX_CONCEPTS_PER_NAME]


class _LruCache:
    """A dict that forgets its least recently used entries beyond ``size``; safe to
    share between threads (a service may link from several)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value):
        with self._lock:
            self._data[key] = value
            if len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def _certain(candidate: Candidate) -> bool:
    """Found by an exact or variant name (not by a rewrite or by similarity)."""
    return candidate.stage in STAGES


def _rank(candidate: Candidate) -> tuple:
    return (STAGES.get(candidate.stage, 2), -candidate.score, candidate.priority, candidate.order)


def _score(parts: list[Part]) -> float:
    """A reading's score: its weakest part's best score (0 when a part has none)."""
    return min((p.best.score if p.best else 0.0) for p in parts) if parts else 0.0


def _distinct(parts: list[Part]) -> list[Part]:
    """Parts whose best concepts differ (two parts naming one concept are one link)."""
    seen, out = set(), []
    for part in parts:
        key = part.best.id if part.best else part.text
        if key not in seen:
            seen.add(key)
            out.append(part)
    return out


def abbreviation_long_forms(doc: Document) -> dict[str, str]:
    """Short form text -> long form text, from ``doc.metadata["abbreviations"]``, or
    found here (:func:`biotag.abbreviations.detect`, the document left unchanged) when
    the abbreviations step has not run yet -- the default pipeline runs it after
    linking, so that short forms the linker could not link inherit their long form's."""
    pairs = doc.metadata.get("abbreviations")
    if pairs is None:
        pairs = [pair.to_dict() for pair in detect(doc)]
    out: dict[str, str] = {}
    for pair in pairs:
        try:
            (s0, s1), (l0, l1) = pair["short"], pair["long"]
        except (KeyError, TypeError, ValueError):
            continue  # not ours to validate: the abbreviations step wrote it
        short, long = doc.text[s0:s1], doc.text[l0:l1]
        if short and long:
            out.setdefault(short, long)
    return out


def taxon_number(curie: str) -> int | None:
    """9606 for ``NCBITaxon:9606``; None for an ID of another ontology."""
    prefix, local = split_curie(curie)
    return int(local) if prefix == "NCBITaxon" and local.isdigit() else None


def document_taxa(entities: Iterable[Entity]) -> set[int]:
    """NCBI Taxonomy numbers the entities link to."""
    found = (taxon_number(f"{link.ontology}:{link.id}") for e in entities for link in e.links)
    return {taxon for taxon in found if taxon is not None}
