"""The default dictionaries behind dictionary features, built once and cached.

One vocabulary per entity type, read with the linking module's parsers
(:mod:`biotag.linking.sources`): MEDIC (disease), MeSH chemical descriptors and
supplementary records (chemical), NCBI Gene human + mouse (gene), NCBI Taxonomy at
species rank and below, with common names (species: genus and higher ranks are left out,
their names are too often English or disease words, such as the crab genus *Cancer*),
Cellosaurus (cell line) and the Cell Ontology (cell type).

The built matcher is cached under ``$BIOTAG_CACHE/features`` (default
``~/.cache/biotag/features``) in a folder named by a hash of the source files (size and
modification time), the build rules and the common-word list, so a changed dictionary or
rule builds a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Iterator

from biotag.entity_types import CELL_LINE, CELL_TYPE, CHEMICAL, DISEASE, GENE, SPECIES
from biotag.features.dictionary import COMMON_WORDS, FORMAT_VERSION, MAX_KEY_CHARS, META_FILE, RULES_VERSION, DictionaryMatcher

log = logging.getLogger(__name__)

FEATURE_TYPES = (DISEASE, CHEMICAL, GENE, SPECIES, CELL_LINE, CELL_TYPE)
DEFAULT_SOURCES: dict[str, tuple[str, ...]] = {
    DISEASE: ("medic",),
    CHEMICAL: ("mesh",),
    GENE: ("ncbigene",),
    SPECIES: ("ncbitaxon",),
    CELL_LINE: ("cellosaurus",),
    CELL_TYPE: ("cl",),
}
# taxonomy ranks kept for the species type (species and what lies below, plus unranked
# names such as virus names); common names come with their species
SPECIES_RANKS = frozenset({"species", "subspecies", "varietas", "forma", "strain", "no_rank", "forma_specialis", "serotype", "serogroup", "biotype", "isolate"})


def cache_root() -> Path:
    env = os.environ.get("BIOTAG_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "biotag") / "features"


def entries(sources: dict[str, tuple[str, ...]] = DEFAULT_SOURCES, root: str | Path | None = None) -> Iterator[tuple[str, str]]:
    """``(name, type)`` for every name of the sources' concepts."""
    from biotag.linking.sources import get_source

    for entity_type, names in sources.items():
        for source_name in names:
            for concept in get_source(source_name).concepts(root):
                if entity_type == SPECIES and concept.extra.get("rank", "species") not in SPECIES_RANKS:
                    continue
                for name in concept.names:
                    yield name, entity_type


def _fingerprint(sources: dict[str, tuple[str, ...]], root: str | Path | None) -> tuple[str, list[dict]]:
    from biotag.linking.sources import get_source

    files = []
    for names in sources.values():
        for source_name in names:
            for path in get_source(source_name).paths(root):
                # the content, not the modification time: a re-mounted or copied data folder
                # keeps its cache (hashing the ~30 MB takes about 0.1 s)
                with path.open("rb") as handle:
                    digest = hashlib.file_digest(handle, "sha1").hexdigest()
                files.append({"source": source_name, "file": path.name, "bytes": path.stat().st_size, "sha1": digest})
    recipe = {"files": files, "sources": sources, "format": FORMAT_VERSION, "rules": RULES_VERSION, "max_key": MAX_KEY_CHARS, "ranks": sorted(SPECIES_RANKS), "common": sorted(COMMON_WORDS)}
    return hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12], files


def default_matcher(root: str | Path | None = None, *, cache: str | Path | None = None, rebuild: bool = False) -> DictionaryMatcher:
    """The matcher over :data:`DEFAULT_SOURCES` (``root``: the dictionaries folder,
    default ``<data root>/dictionaries``), from the cache or built into it."""
    digest, files = _fingerprint(DEFAULT_SOURCES, root)
    folder = (Path(cache) if cache else cache_root()) / f"default-{digest}"
    if (folder / META_FILE).is_file() and not rebuild:
        return DictionaryMatcher.load(folder)
    started = time.perf_counter()
    matcher = DictionaryMatcher.build(entries(DEFAULT_SOURCES, root), FEATURE_TYPES, info={"sources": files, "fingerprint": digest})
    matcher.info["build_seconds"] = round(time.perf_counter() - started, 1)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    matcher.save(tmp)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    log.info("built dictionary features in %.0f s: %s", matcher.info["build_seconds"], matcher.info["counts"])
    return DictionaryMatcher.load(folder)
