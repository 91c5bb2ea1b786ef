"""Training the linking re-ranker (:mod:`biotag.linking.rerank`): SapBERT-style
self-alignment on the dictionaries' own synonyms, on CPU.

Examples are ``(query, positive, hard negatives)`` of normalised names:

* **dictionary pairs** -- two names of one concept (a synonym as the query, the
  preferred name or another synonym as the positive), from the indexes named
  (MEDIC diseases, MeSH chemicals);
* **training mentions** -- the gold mentions of the *train* split of the linking
  benchmarks (never devel or test), each paired with names of its concept.

The hard negatives of a query are the names the 3-gram index finds nearest to it that
do not name its concept: exactly the confusions the re-ranker must undo. The loss is
InfoNCE over the batch -- every other example's positive and negatives are negatives
too, except names of the query's own concept.

Training checkpoints every ``checkpoint_every`` steps (``<out>/checkpoint``, replaced
atomically) and resumes from there; the mined examples are saved beside it, so a resumed
run sees the same data in the same order; ``max_seconds`` ends a run at the first
checkpoint after that time (to train in slots of a shared machine), and the next call
goes on from there. :func:`tune_reranker` then picks the weight of the embedding score,
the number of candidates re-scored and of names compared per candidate on the devel
splits and writes them into ``reranker.json``.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from biotag.errors import InputError
from biotag.linking.index import OntologyIndex, open_indexes
from biotag.linking.normalize import normalize
from biotag.linking.rerank import DEFAULT_MAX_LENGTH, BiEncoder, read_config

log = logging.getLogger("biotag.linking")

EXAMPLES_FILE = "examples.jsonl.gz"
STATE_FILE = "state.pt"
LOG_FILE = "train-log.jsonl"
DEFAULT_BENCHMARKS = ("ncbi-disease", "bc5cdr-disease", "bc5cdr-chem")


@dataclass
class RerankTrainConfig:
    encoder: str = "minilm-l3"
    index_dir: str | None = None
    ontologies: tuple[str, ...] = ("medic", "mesh")
    benchmarks: tuple[str, ...] = DEFAULT_BENCHMARKS  # their train-split mentions
    types: tuple[str, ...] = ()  # entity types it re-ranks (default: the ontologies')
    mention_copies: int = 2  # examples per distinct training mention
    pairs_per_concept: int = 2  # dictionary examples per concept
    max_concepts: int = 30_000  # per ontology (a sample of the larger ones)
    steps: int = 2_000
    batch_size: int = 32
    negatives: int = 3
    learning_rate: float = 5e-5
    warmup: float = 0.05
    temperature: float = 0.05
    max_length: int = DEFAULT_MAX_LENGTH
    seed: int = 13
    threads: int = 2
    checkpoint_every: int = 200
    log_every: int = 50

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(slots=True)
class Example:
    query: str
    positive: str
    concept: str  # the positive's concept ID (names of it are never negatives)
    negatives: list[str] = field(default_factory=list)
    negative_concepts: list[str] = field(default_factory=list)


# -- mining ---------------------------------------------------------------------------
def concept_names(index: OntologyIndex, concept_rows: Iterable[int] | None = None) -> dict[int, list[str]]:
    """Distinct normalised names per concept row, the preferred name first."""
    names: dict[int, list[str]] = {}
    query = "SELECT c.row, c.name, s.name FROM concepts c JOIN synonyms s ON s.concept = c.row ORDER BY c.row, s.rowid"
    wanted = None if concept_rows is None else set(concept_rows)
    for row, preferred, synonym in index.db.execute(query):
        if wanted is not None and row not in wanted:
            continue
        found = names.setdefault(row, [normalize(preferred)])
        text = normalize(synonym)
        if text and text not in found:
            found.append(text)
    return {row: [n for n in found if n] for row, found in names.items()}


def dictionary_examples(index: OntologyIndex, rng: random.Random, *, per_concept: int, max_concepts: int) -> list[Example]:
    """Pairs of names of one concept (concepts with two names or more)."""
    names = {row: found for row, found in concept_names(index).items() if len(found) >= 2}
    rows = sorted(names)
    if len(rows) > max_concepts:
        rows = sorted(rng.sample(rows, max_concepts))
    ids = _concept_ids(index, rows)
    out = []
    for row in rows:
        found = names[row]
        for _ in range(min(per_concept, len(found) - 1)):
            query, positive = rng.sample(found, 2)
            out.append(Example(query, positive, ids[row]))
    return out


def mention_examples(index: OntologyIndex, mentions: Iterable[tuple[str, str]], rng: random.Random, *, copies: int) -> list[Example]:
    """``(mention text, gold concept ID)`` pairs -> examples against names of the
    concept (its preferred name, then random synonyms); unknown IDs are skipped."""
    by_id = _rows_by_id(index)
    pairs = {(normalize(text), by_id[concept]) for text, concept in mentions if concept in by_id}
    pairs = sorted((text, row) for text, row in pairs if text)
    names = concept_names(index, {row for _, row in pairs})
    ids = _concept_ids(index, {row for _, row in pairs})
    out = []
    for text, row in pairs:
        found = [n for n in names.get(row, []) if n != text] or names.get(row, [])[:1]
        for copy in range(min(copies, len(found))):
            positive = found[0] if copy == 0 else rng.choice(found)
            out.append(Example(text, positive, ids[row]))
    return out


def _rows_by_id(index: OntologyIndex) -> dict[str, int]:
    out: dict[str, int] = {}
    for row, concept_id, alt_ids in index.db.execute("SELECT row, id, alt_ids FROM concepts"):
        for other in (alt_ids or "").split():
            out.setdefault(other, row)
        out[concept_id] = row
    return out


def _concept_ids(index: OntologyIndex, rows: Iterable[int]) -> dict[int, str]:
    return {row: index.concept_record(row).id for row in rows}


def add_negatives(index: OntologyIndex, examples: list[Example], count: int, *, pool: int = 16) -> None:
    """Fill each example's hard negatives: the 3-gram nearest names of its query that
    do not name its concept."""
    mask = index.type_mask(None)
    by_id = _rows_by_id(index)
    for example in examples:
        rows, _ = index.search(example.query, mask, pool)
        texts = index.texts(rows.tolist()) if rows.size else {}
        own = by_id.get(example.concept)
        for row in rows.tolist():
            concepts = index.concepts_of(row, mask)
            if not concepts or own in concepts or texts.get(row) in (None, example.query, example.positive):
                continue
            example.negatives.append(texts[row])
            example.negative_concepts.append(index.concept_record(concepts[0]).id)
            if len(example.negatives) == count:
                break


def benchmark_mentions(benchmark: str, split: str, index_dir) -> list[tuple[str, str]]:
    """``(text, ID)`` of the single-concept gold mentions of a benchmark split."""
    from biotag.linking.evaluate import get_benchmark, load_benchmark
    from biotag.linking.linker import Linker

    bench = get_benchmark(benchmark)
    linker = Linker(index_dir, list(bench.ontologies))
    mentions, _ = load_benchmark(bench, split, linker)
    return [(m.text, next(iter(m.ids))) for m in mentions if len(m.ids) == 1]


def mine_examples(config: RerankTrainConfig) -> list[Example]:
    """Every training example, shuffled (deterministic for a seed)."""
    from biotag.linking.evaluate import get_benchmark

    rng = random.Random(config.seed)
    indexes = {index.name: index for index in open_indexes(config.index_dir, config.ontologies)}
    examples: list[Example] = []
    for name, index in indexes.items():
        found = dictionary_examples(index, rng, per_concept=config.pairs_per_concept, max_concepts=config.max_concepts)
        for bench in config.benchmarks:
            if name in get_benchmark(bench).ontologies:
                found += mention_examples(index, benchmark_mentions(bench, "train", config.index_dir), rng, copies=config.mention_copies)
        add_negatives(index, found, config.negatives)
        log.info("%s: %d examples", name, len(found))
        examples += found
    rng.shuffle(examples)
    return examples


def save_examples(path: Path, examples: Sequence[Example]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for example in examples:
            fh.write(json.dumps(asdict(example)) + "\n")


def load_examples(path: Path) -> list[Example]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [Example(**json.loads(line)) for line in fh]


# -- training -------------------------------------------------------------------------
def batch_loss(encoder: BiEncoder, batch: Sequence[Example], temperature: float):
    """InfoNCE of a batch: each query against every positive and negative in it, its
    own positive the target, other names of its concept left out."""
    import torch

    queries = encoder.embed([e.query for e in batch])
    names = [e.positive for e in batch] + [n for e in batch for n in e.negatives]
    concepts = [e.concept for e in batch] + [c for e in batch for c in e.negative_concepts]
    candidates = encoder.embed(names)
    logits = queries @ candidates.T / temperature
    own = torch.tensor([[c == e.concept for c in concepts] for e in batch])
    own[torch.arange(len(batch)), torch.arange(len(batch))] = False
    logits = logits.masked_fill(own, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))


def train_reranker(out: str | Path, config: RerankTrainConfig, *, examples: list[Example] | None = None, max_seconds: float | None = None) -> bool:
    """Train (or resume training) a re-ranker into ``out``. Examples are mined from the
    indexes unless given. Returns whether training is finished (the re-ranker saved in
    ``out``); ``False`` when ``max_seconds`` ran out first (a checkpoint holds the
    progress: call again to go on)."""
    import torch

    from biotag.paths import find_encoder
    from biotag.training.checkpoint import existing_dir, replacing_dir, restore_rng_states, rng_states

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, config.threads))
    checkpoint = existing_dir(out / "checkpoint")
    mined = examples is None
    if examples is None:
        if (out / EXAMPLES_FILE).is_file():
            examples = load_examples(out / EXAMPLES_FILE)
        else:
            examples = mine_examples(config)
            save_examples(out / EXAMPLES_FILE, examples)
    if not examples:
        raise InputError("no training examples: the indexes have no concept with two names", field="ontologies")
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    source = checkpoint if checkpoint is not None else find_encoder(config.encoder)
    encoder = BiEncoder.from_pretrained(source, max_length=config.max_length)
    optimizer = torch.optim.AdamW(encoder.model.parameters(), lr=config.learning_rate)
    warmup = max(1, int(config.warmup * config.steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (config.steps - step) / max(1, config.steps - warmup)))
    )
    step, losses = 0, []
    if checkpoint is not None:
        state = torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["scheduler"])
        restore_rng_states(state["rng"])
        step, losses = state["step"], state["losses"]
        log.info("resumed at step %d", step)
    encoder.model.train()
    started = time.perf_counter()
    while step < config.steps:
        first = (step * config.batch_size) % len(examples)
        batch = [examples[(first + i) % len(examples)] for i in range(config.batch_size)]
        loss = batch_loss(encoder, batch, config.temperature)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        losses.append(loss.item())
        if step % config.log_every == 0 or step == config.steps:
            record = {"step": step, "loss": round(float(np.mean(losses[-config.log_every :])), 4), "seconds": round(time.perf_counter() - started, 1)}
            with open(out / LOG_FILE, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info("step %(step)d loss %(loss).4f", record)
        out_of_time = max_seconds is not None and time.perf_counter() - started > max_seconds
        if step % config.checkpoint_every == 0 or step == config.steps or out_of_time:
            with replacing_dir(out / "checkpoint") as tmp:
                encoder.model.save_pretrained(tmp)
                encoder.tokenizer.save_pretrained(tmp)
                state = {"optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(), "rng": rng_states(), "step": step, "losses": losses}
                torch.save(state, tmp / STATE_FILE)
        if out_of_time and step < config.steps:
            log.info("stopped at step %d of %d after %.0f s; run again to go on", step, config.steps, time.perf_counter() - started)
            return False
    if config.types:
        types = sorted(config.types)
    elif mined:
        types = sorted({t for index in open_indexes(config.index_dir, config.ontologies) for t in index.info.types})
    else:
        types = []  # examples given by the caller: no telling which types they cover
    info = {
        **_tuned_settings(out),
        "types": types,
        "base": str(config.encoder),
        "training": {**config.to_dict(), "examples": len(examples), "final_loss": round(float(np.mean(losses[-config.log_every :])), 4)},
    }
    encoder.save(out, info)
    return True


def _tuned_settings(out: Path) -> dict:
    """Weight, pool, names and tuning record of a re-ranker saved in ``out`` before
    (saving again after a finished run keeps them), else the default weight."""
    from biotag.linking.rerank import DEFAULT_WEIGHT

    try:
        config = read_config(out)
    except InputError:
        return {"weight": DEFAULT_WEIGHT}
    return {key: config[key] for key in ("weight", "pool", "names", "tuning") if key in config}


# -- choosing weight, pool and names ------------------------------------------------
class _Probe:
    """Stands in for a re-ranker to see whether the linker asks one (order unchanged)."""

    def __init__(self, pool: int) -> None:
        self.pool = pool
        self.calls = 0

    def rerank(self, mention: str, entity_type: str, candidates: list) -> list:
        self.calls += 1
        return candidates


def reranked_mentions(linker, mentions: Sequence, docs: dict, pool: int) -> list:
    """The gold ``mentions`` whose linking (in their document, as
    :func:`~biotag.linking.evaluate.score` links them) asks the re-ranker at least once:
    the only ones a re-ranker's settings can change. Uses ``linker`` without its
    re-ranker (restored afterwards)."""
    from biotag.linking.linker import abbreviation_long_forms

    probe, kept = _Probe(pool), linker.reranker
    linker.reranker = probe
    long_forms = {doc_id: abbreviation_long_forms(doc) for doc_id, doc in docs.items()}
    found = []
    try:
        for mention in mentions:
            linker.clear_cache()  # a cached answer would hide the question
            before = probe.calls
            linker.resolve(mention.text, mention.type, 5, long_form=long_forms.get(mention.document, {}).get(mention.text))
            if probe.calls > before:
                found.append(mention)
    finally:
        linker.reranker = kept
        linker.clear_cache()
    return found


def tune_reranker(
    reranker,
    benchmarks: Sequence[str] = DEFAULT_BENCHMARKS,
    *,
    index_dir=None,
    split: str = "devel",
    weights: Sequence[float] = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0),
    pools: Sequence[int] = (5, 10, 20),
    names: Sequence[int] = (2, 8, 16),
    tolerance: float = 0.1,
    write: bool = True,
) -> dict:
    """Mean acc@1 over ``benchmarks`` (``split``, with training synonyms, as reported)
    for every ``weight`` x ``pool`` x ``names``; the cheapest setting (fewest names
    embedded per mention: ``pool * names``) within ``tolerance`` points of the best mean
    wins, and is written into ``reranker.json`` when ``reranker`` is a directory (or an
    :class:`~biotag.linking.rerank.EmbeddingReranker` loaded from one)."""
    from biotag.linking.evaluate import LinkingReport, get_benchmark, load_benchmark, score, with_training_synonyms
    from biotag.linking.linker import Linker
    from biotag.linking.rerank import CONFIG_FILE, EmbeddingReranker

    if not hasattr(reranker, "rerank"):
        reranker = EmbeddingReranker.load(reranker)
    # one cache of name embeddings for every setting: each name is embedded once
    reranker.cache_size = max(reranker.cache_size, 2_000_000)
    settings = [(w, p, n) for p in pools for n in names for w in weights]
    table: dict[tuple, dict[str, float]] = {s: {} for s in settings}
    baseline: dict[str, float] = {}
    for name in benchmarks:
        bench = get_benchmark(name)
        linker = Linker(index_dir, list(bench.ontologies), reranker=reranker)
        with with_training_synonyms(linker, bench, split):
            mentions, docs = load_benchmark(bench, split, linker)

            def hits(subset) -> int:
                linker.clear_cache()
                return score(linker, subset, docs, LinkingReport(bench.name, split, list(bench.ontologies)), max_misses=0).hits[1]

            # only mentions that ask the re-ranker can change: the grid scores those
            linker.reranker = None
            plain = hits(mentions)
            baseline[name] = round(100.0 * plain / len(mentions), 2) if mentions else 0.0
            asking = reranked_mentions(linker, mentions, docs, max(pools))
            plain_asking = hits(asking)
            linker.reranker = reranker
            log.info("%s: %d of %d mentions ask the re-ranker", name, len(asking), len(mentions))
            # the widest setting first, so that later ones find their names cached
            for weight, pool, count in sorted(settings, key=lambda s: (-s[1] * s[2], s[0])):
                reranker.weight, reranker.pool, reranker.max_names = weight, pool, count
                found = plain - plain_asking + hits(asking)
                table[(weight, pool, count)][name] = round(100.0 * found / len(mentions), 2) if mentions else 0.0
        log.info("%s tuned: best %s", name, max(table.values(), key=lambda r: r.get(name, 0.0)))
    means = {s: round(float(np.mean(list(r.values()))), 2) for s, r in table.items()}
    best_mean = max(means.values())
    weight, pool, count = min(
        (s for s in settings if means[s] >= best_mean - tolerance),
        key=lambda s: (s[1] * s[2], -means[s], abs(s[0] - 0.5)),
    )
    result = {
        "weight": weight,
        "pool": pool,
        "names": count,
        "split": split,
        "mean acc@1": means[(weight, pool, count)],
        "acc@1": table[(weight, pool, count)],
        "acc@1 without re-ranking": baseline,
        "grid": [{"weight": w, "pool": p, "names": n, "acc@1": table[(w, p, n)], "mean": means[(w, p, n)]} for w, p, n in settings],
    }
    if write and reranker.path is not None:
        path = Path(reranker.path) / CONFIG_FILE
        config = json.loads(path.read_text(encoding="utf-8"))
        config.update(weight=weight, pool=pool, names=count, tuning=result)
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return result
