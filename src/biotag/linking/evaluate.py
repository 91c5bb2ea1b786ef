"""Linking accuracy on gold mentions: accuracy@1 / @5, coverage, mentions per second.

Benchmarks (:data:`BENCHMARKS`, paths under the data root):

* ``ncbi-disease``, ``bc5cdr-disease``, ``bc5cdr-chem`` -- the BioSyn / SapBERT query
  files ``dictionaries/biosyn/<name>_{train,dev,test}_queries.tsv.gz`` (``pmid start
  end type mention cui``), with the PubTator abstracts they come from as context (for
  abbreviation definitions);
* ``s800`` (NCBI Taxonomy), ``bioid`` (Cellosaurus), ``gnormplus`` and ``nlm-gene``
  (NCBI Gene), ``biored`` (all six types) -- the gold mentions with IDs of the PubTator
  corpora.

Scoring follows BioSyn's ``check_label`` / ``evaluate_topk_acc``: gold IDs joined by
``|`` or ``+`` form one set; every part the linker reads in the mention (one, or several
for a composite mention) must have, among its top ``k`` candidates, a concept whose ID or
alternate ID (MEDIC's OMIM numbers) is in that set. A mention with no gold ID (``-1``)
is not scored. Unlike BioSyn, which drops them from its test sets, mentions whose gold
IDs are missing from the dictionary are kept: ``acc@1`` counts all mentions and
``acc@1 covered`` only those whose IDs all exist in the indexes (BioSyn's protocol).

``train_synonyms`` reproduces BioSyn's dictionary augmentation (its ``test_dictionary``
holds the training and development mentions too, and SapBERT's published numbers use
it): the gold mentions of the earlier splits become one more index.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from biotag import paths
from biotag.abbreviations import detect
from biotag.document import Document
from biotag.errors import FormatError, InputError
from biotag.linking.index import build_index
from biotag.linking.linker import Linker, abbreviation_long_forms, taxon_number
from biotag.linking.ontology import Concept, numbered_lines

_MESH_UID = re.compile(r"[CD]\d{6,9}")
_SEPARATORS = re.compile(r"[|+,;]")
NO_ID = {"", "-1", "-"}


@dataclass(frozen=True)
class Benchmark:
    name: str
    corpus: str  # the PubTator corpus (biotag.corpora) with the texts and gold mentions
    types: tuple[str, ...]  # unified types scored
    ontologies: tuple[str, ...]  # indexes used by default
    queries: str | None = None  # BioSyn query files, "{split}" filled in
    query_splits: dict = field(default_factory=lambda: {"train": "train", "devel": "dev", "test": "test"})
    reference: dict = field(default_factory=dict)  # published accuracy@1 to compare with


SAPBERT = "SapBERT (Liu et al. 2021), as quoted in issue 5"
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("ncbi-disease", "ncbi-disease-doc", ("disease",), ("medic",), "biosyn/ncbi-disease_{split}_queries.tsv.gz", reference={SAPBERT: 92.0}),
        Benchmark("bc5cdr-disease", "bc5cdr-doc", ("disease",), ("medic",), "biosyn/bc5cdr-disease_{split}_queries.tsv.gz", reference={SAPBERT: 93.5}),
        Benchmark("bc5cdr-chem", "bc5cdr-doc", ("chemical",), ("mesh",), "biosyn/bc5cdr-chemical_{split}_queries.tsv.gz", reference={SAPBERT: 96.5}),
        Benchmark("s800", "s800-doc", ("species",), ("ncbitaxon",)),
        Benchmark("bioid", "bioid", ("cell_line",), ("cellosaurus",)),
        Benchmark("gnormplus", "gnormplus", ("gene",), ("ncbigene",)),
        Benchmark("nlm-gene", "nlm-gene", ("gene",), ("ncbigene",)),
        Benchmark("biored", "biored", ("gene", "chemical", "disease", "species", "cell_line"), ("ncbigene", "mesh", "medic", "ncbitaxon", "cellosaurus")),
    )
}


@dataclass(frozen=True, slots=True)
class GoldMention:
    document: str
    start: int
    end: int
    text: str
    type: str
    ids: frozenset[str]


def get_benchmark(name: str) -> Benchmark:
    found = BENCHMARKS.get(name.strip().lower())
    if found is None:
        raise InputError(f"unknown linking benchmark {name!r}; known: {', '.join(BENCHMARKS)}", field="corpus")
    return found


def curie(raw: str, entity_type: str) -> str | None:
    """A gold ID as the dictionaries write it (``D001943`` -> ``MESH:D001943``,
    ``CVCL_0030`` -> ``CVCL:0030``, ``9606`` of a species -> ``NCBITaxon:9606``)."""
    from biotag.io.pubtator import parse_id

    raw = raw.strip()
    if raw in NO_ID:
        return None
    parsed = parse_id(raw, entity_type)
    if parsed is None:
        return None
    link = parsed[0]
    return f"{link.ontology}:{link.id}"


def gold_ids(raw: str, entity_type: str) -> frozenset[str]:
    return frozenset(c for part in _SEPARATORS.split(raw) if (c := curie(part, entity_type)))


# -- reading gold mentions --------------------------------------------------------------
def read_queries(path: str | Path, entity_type: str) -> Iterator[GoldMention]:
    """Gold mentions of a BioSyn query file (``pmid start end type mention cui``)."""
    for number, line in numbered_lines(path):
        columns = line.split("\t")
        if number == 1 and columns[0] == "pmid":
            continue
        if len(columns) != 6:
            raise FormatError(f"expected 6 TAB-separated columns, found {len(columns)}", path=str(path), line=number)
        pmid, start, end, _label, mention, cui = columns
        try:
            span = int(start), int(end)
        except ValueError:
            raise FormatError("start and end must be integers", path=str(path), line=number, field="start") from None
        ids = gold_ids(cui, "Disease" if entity_type == "disease" else "Chemical")
        if ids:
            yield GoldMention(pmid, *span, mention, entity_type, ids)


def corpus_mentions(docs: Iterable[Document], types: Iterable[str], linker: Linker) -> Iterator[GoldMention]:
    """Gold mentions (entities with links) of the scored types in PubTator documents."""
    wanted = set(types)
    for doc in docs:
        for entity in doc.entities:
            entity_type = linker.unify(entity.type)
            ids = frozenset(f"{link.ontology}:{link.id}" for link in entity.links)
            if entity_type in wanted and ids:
                yield GoldMention(doc.id, entity.start, entity.end, entity.text, entity_type, ids)


def _documents(corpus: str, split: str) -> dict[str, Document]:
    from biotag.corpora import read_corpus, get_corpus

    spec = get_corpus(corpus)
    return {doc.id: doc for doc in read_corpus(corpus, split, **dict(spec.reader_options))}


def load_benchmark(benchmark: Benchmark, split: str, linker: Linker) -> tuple[list[GoldMention], dict[str, Document]]:
    """Gold mentions and their documents (abbreviation definitions detected)."""
    docs = _documents(benchmark.corpus, split)
    for doc in docs.values():
        doc.metadata["abbreviations"] = [pair.to_dict() for pair in detect(doc)]
    if benchmark.queries is None:
        return list(corpus_mentions(docs.values(), benchmark.types, linker)), docs
    if split not in benchmark.query_splits:
        raise InputError(f"{benchmark.name} has no split {split!r}; its splits: {', '.join(benchmark.query_splits)}", field="split")
    path = paths.data_root() / "dictionaries" / benchmark.queries.format(split=benchmark.query_splits[split])
    if not path.is_file():
        raise InputError("query file not found (set BIOTAG_DATA to the folder holding dictionaries/)", path=str(path))
    return list(read_queries(path, benchmark.types[0])), docs


def training_synonyms(benchmark: Benchmark, split: str, linker: Linker) -> list[Concept]:
    """Concepts named by the gold mentions of the splits before ``split`` (train, and
    devel for test): BioSyn's dictionary augmentation. Composite mentions are skipped."""
    earlier = {"test": ("train", "devel"), "devel": ("train",)}.get(split, ())
    concepts = []
    for other in earlier:
        if benchmark.queries is None and other not in _corpus_splits(benchmark.corpus):
            continue
        mentions, _ = load_benchmark(benchmark, other, linker)
        concepts.extend(Concept(next(iter(m.ids)), m.text, types=(m.type,)) for m in mentions if len(m.ids) == 1)
    return concepts


@contextmanager
def with_training_synonyms(linker: Linker, bench: Benchmark, split: str, *, enabled: bool = True) -> Iterator[Linker]:
    """``linker`` with one more index, of :func:`training_synonyms`, while the block
    runs (nothing changes unless ``enabled``)."""
    if not enabled:
        yield linker
        return
    with tempfile.TemporaryDirectory(prefix="biotag-train-synonyms-") as extra_dir:
        concepts = training_synonyms(bench, split, linker)
        # ahead of the dictionaries (priority -1): a name the corpus annotates one
        # way means that concept in this corpus, as in BioSyn's merged dictionary
        build_index("train-synonyms", concepts, extra_dir, priority=-1, description=f"{bench.name} gold mentions before {split}")
        before = linker.indexes
        linker.indexes = sorted([*before, *Linker(extra_dir).indexes], key=lambda i: (i.info.priority, i.name))
        try:
            yield linker
        finally:
            linker.indexes = before
            linker.clear_cache()


def _corpus_splits(corpus: str) -> tuple[str, ...]:
    from biotag.corpora import get_corpus

    return tuple(get_corpus(corpus).splits)


# -- scoring ----------------------------------------------------------------------------
@dataclass
class LinkingReport:
    benchmark: str
    split: str
    ontologies: list[str]
    mentions: int = 0
    covered: int = 0
    hits: dict = field(default_factory=lambda: {1: 0, 5: 0})
    name_hits: int = 0  # top-1 correct by BioSyn's rule (homonyms of the matched name count)
    covered_hits: dict = field(default_factory=lambda: {1: 0, 5: 0})
    linked: int = 0  # top-1 at or above the NIL threshold
    linked_correct: int = 0
    seconds: float = 0.0  # linking the gold mentions, top 5 each
    speed_mentions: int = 0  # the same documents through link_documents (top 1)
    speed_seconds: float = 0.0
    plain_speed_seconds: float = 0.0  # the same without the re-ranker (when there is one)
    reranker: str | None = None  # the re-ranker's directory, with its weight, pool and names
    stages: Counter = field(default_factory=Counter)
    misses: list = field(default_factory=list)
    train_synonyms: bool = False
    reference: dict = field(default_factory=dict)

    def rate(self, count: int, total: int) -> float:
        return round(100.0 * count / total, 2) if total else 0.0

    def to_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "split": self.split,
            "ontologies": self.ontologies,
            "train_synonyms": self.train_synonyms,
            "mentions": self.mentions,
            "covered": self.covered,
            "acc@1": self.rate(self.hits[1], self.mentions),
            "acc@5": self.rate(self.hits[5], self.mentions),
            "acc@1 BioSyn rule": self.rate(self.name_hits, self.mentions),
            "acc@1 covered": self.rate(self.covered_hits[1], self.covered),
            "acc@5 covered": self.rate(self.covered_hits[5], self.covered),
            "linked": self.rate(self.linked, self.mentions),
            "precision of links": self.rate(self.linked_correct, self.linked),
            "mentions/s top-5": round(self.mentions / self.seconds) if self.seconds else None,
            "mentions/s link_documents": round(self.speed_mentions / self.speed_seconds) if self.speed_seconds else None,
            "mentions/s link_documents, no re-ranker": round(self.speed_mentions / self.plain_speed_seconds) if self.plain_speed_seconds else None,
            "reranker": self.reranker,
            "stages": dict(self.stages),
            "reference acc@1": self.reference,
            "misses": self.misses,
        }

    def format_table(self) -> str:
        data = self.to_dict()
        keys = ["mentions", "covered", "acc@1", "acc@5", "acc@1 BioSyn rule", "acc@1 covered", "acc@5 covered", "linked", "precision of links", "mentions/s top-5", "mentions/s link_documents"]
        if self.plain_speed_seconds:
            keys.append("mentions/s link_documents, no re-ranker")
        lines = [f"{self.benchmark} ({self.split}), indexes: {', '.join(self.ontologies)}" + (" + training synonyms" if self.train_synonyms else "")]
        if self.reranker:
            lines.append(f"  re-ranker            {self.reranker}")
        lines += [f"  {k:20s} {data[k]}" for k in keys]
        lines += [f"  reference acc@1      {v} ({k})" for k, v in self.reference.items()]
        return "\n".join(lines)


def _hit(parts, gold: frozenset[str], k: int, *, homonyms: bool = False) -> bool:
    def ids(candidate):
        return candidate.name_ids if homonyms else candidate.ids

    return bool(parts) and all(any(gold.intersection(ids(c)) for c in p.candidates[:k]) for p in parts)


def known_ids(linker: Linker) -> set[str]:
    """Every concept ID and alternate ID of the linker's indexes (for coverage)."""
    known: set[str] = set()
    for index in linker.indexes:
        for concept_id, alt_ids in index.db.execute("SELECT id, alt_ids FROM concepts"):
            known.add(concept_id)
            if alt_ids:
                known.update(alt_ids.split())
    return known


def score(linker: Linker, mentions: list[GoldMention], docs: dict[str, Document], report: LinkingReport, *, max_misses: int = 50) -> LinkingReport:
    """Link every gold mention (top 5, in its document's context) and count hits."""
    known = known_ids(linker)
    long_forms = {doc_id: abbreviation_long_forms(doc) for doc_id, doc in docs.items()}
    taxa: dict[str, set[int]] = {}  # organisms linked so far per document, as link_documents does
    started = time.perf_counter()
    for mention in mentions:
        long_form = long_forms.get(mention.document, {}).get(mention.text)
        seen = taxa.setdefault(mention.document, set())
        parts = linker.resolve(mention.text, mention.type, 5, long_form=long_form, taxa=frozenset(seen))
        if mention.type == "species":
            seen.update(t for p in parts if p.best and (t := taxon_number(p.best.id)) is not None)
        covered = mention.ids <= known
        report.mentions += 1
        report.covered += covered
        for k in (1, 5):
            hit = _hit(parts, mention.ids, k)
            report.hits[k] += hit
            report.covered_hits[k] += hit and covered
        report.name_hits += _hit(parts, mention.ids, 1, homonyms=True)
        best = [p.best for p in parts if p.best is not None]
        if best:
            report.stages[best[0].stage] += 1
        if best and min(c.score for c in best) >= linker.threshold:
            report.linked += 1
            report.linked_correct += _hit(parts, mention.ids, 1)
        if not _hit(parts, mention.ids, 1) and len(report.misses) < max_misses:
            got = [(p.text, p.best.id if p.best else None, p.best.name if p.best else None, round(p.best.score, 3) if p.best else None) for p in parts]
            report.misses.append({"mention": mention.text, "gold": sorted(mention.ids), "long_form": long_form, "predicted": got})
    report.seconds = time.perf_counter() - started
    return report


def link_speed(linker: Linker, docs: Iterable[Document], types: Iterable[str]) -> tuple[int, float]:
    """``(mentions, seconds)`` for :meth:`Linker.link_documents` on copies of ``docs``
    whose entities of ``types`` lost their links (the production path: best link only,
    NIL threshold, abbreviations, composites, cache starting empty)."""
    wanted = set(types)
    copies = []
    for doc in docs:
        copy = Document.from_dict(doc.to_dict(), validate=False)
        copy.entities = [e for e in copy.entities if linker.unify(e.type) in wanted]
        for entity in copy.entities:
            entity.links = []
        copies.append(copy)
    mentions = sum(len(d.entities) for d in copies)
    started = time.perf_counter()
    linker.link_documents(copies)
    return mentions, time.perf_counter() - started


def _memory_mb() -> dict[str, float]:
    """This process's resident memory (Linux ``/proc``): all of it, the anonymous part
    (Python objects, caches) and the file-backed part (mapped index pages, which the
    kernel can drop and share between processes), and the peak."""
    fields = {"VmRSS": "rss", "RssAnon": "anonymous", "RssFile": "file-backed", "VmHWM": "peak"}
    out: dict[str, float] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in fields:
                out[fields[key]] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def footprint(
    index_dir: str | Path | None = None,
    ontologies: Iterable[str] | None = None,
    benchmarks: Iterable[str] = ("bc5cdr-disease", "bc5cdr-chem", "s800", "gnormplus"),
) -> dict:
    """Seconds to open the indexes (the default ones unless ``ontologies`` names them)
    and to use each once, and memory after linking the test documents of
    ``benchmarks`` with them."""
    started = time.perf_counter()
    linker = Linker(index_dir, ontologies)
    opened = time.perf_counter() - started
    for index in linker.indexes:  # first use: SQLite opened, arrays mapped, one search
        for entity_type in index.info.types:
            linker.candidates("alpha beta", entity_type, 1)
    first_use = time.perf_counter() - started
    after_open = _memory_mb()
    mentions, seconds = 0, 0.0
    for name in benchmarks:
        bench = get_benchmark(name)
        docs = _documents(bench.corpus, "test")
        n, s = link_speed(linker, docs.values(), bench.types)
        mentions, seconds = mentions + n, seconds + s
    return {
        "indexes": [index.name for index in linker.indexes],
        "open seconds": round(opened, 3),
        "open + first use seconds": round(first_use, 3),
        "memory after first use (MB)": after_open,
        "linked mentions": mentions,
        "mentions/s": round(mentions / seconds) if seconds else None,
        "memory after linking (MB)": _memory_mb(),
    }


def describe_reranker(reranker) -> str | None:
    """``DIR (weight W, pool P, names N)`` of a re-ranker, for reports."""
    if reranker is None:
        return None
    settings = ", ".join(f"{key} {getattr(reranker, attr)}" for key, attr in (("weight", "weight"), ("pool", "pool"), ("names", "max_names")) if hasattr(reranker, attr))
    return f"{getattr(reranker, 'path', None) or type(reranker).__name__} ({settings})"


def evaluate_linking(
    benchmark: str | Benchmark,
    split: str = "test",
    *,
    index_dir: str | Path | None = None,
    ontologies: Iterable[str] | None = None,
    train_synonyms: bool = False,
    max_misses: int = 50,
    measure_speed: bool = True,
    **linker_options,
) -> LinkingReport:
    """Accuracy@1/@5 of the linker on a benchmark's gold mentions, and the speed of
    :meth:`Linker.link_documents` on their documents (with a re-ranker: with its
    embedding cache emptied, and without the re-ranker, one after the other)."""
    bench = benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)
    names = list(ontologies) if ontologies else list(bench.ontologies)
    linker = Linker(index_dir, names, **linker_options)
    with with_training_synonyms(linker, bench, split, enabled=train_synonyms):
        mentions, docs = load_benchmark(bench, split, linker)
        report = LinkingReport(bench.name, split, names, train_synonyms=train_synonyms, reference=dict(bench.reference))
        report.reranker = describe_reranker(linker.reranker)
        score(linker, mentions, docs, report, max_misses=max_misses)
        if measure_speed:
            reranker = linker.reranker
            if reranker is not None:
                linker.reranker = None
                linker.clear_cache()
                _, report.plain_speed_seconds = link_speed(linker, docs.values(), bench.types)
                linker.reranker = reranker
                if hasattr(reranker, "clear_cache"):
                    reranker.clear_cache()  # cold: names embedded while scoring are forgotten
            linker.clear_cache()
            report.speed_mentions, report.speed_seconds = link_speed(linker, docs.values(), bench.types)
        return report
