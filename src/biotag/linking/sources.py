"""The dictionaries biotag can build indexes from by name, and their parsers.

Each :class:`Source` names its files relative to a dictionaries folder (by default
``<data root>/dictionaries``, see :func:`biotag.paths.data_root`; ``biotag build-index
--source DIR`` for a user's own copy), the parser that turns them into
:class:`~biotag.linking.ontology.Concept` objects, the entity types it serves, its
*priority* among the ontologies of one type (lower first when two give the same score)
and whether a :class:`~biotag.linking.Linker` uses it when not told which ontologies to
use (*default*: the one vocabulary per type that the benchmark corpora link to).

=========== ================================== ========= ============== =======
name        files                              types     IDs            default
=========== ================================== ========= ============== =======
medic       ctd/CTD_diseases.tsv.gz (2017)     disease   MESH:, OMIM:   yes
medic-2012  ctd/medic_06Jul2012.txt.gz         disease   MESH:, OMIM:   no
mesh        mesh/mesh_descriptors +            chemical  MESH:D…/C…     yes
            mesh_scr_chemical_disease
ncbigene    genes/Homo_sapiens.gene_info.gz,   gene      NCBIGene:      yes
            genes/Mus_musculus.gene_info.gz
rgd         genes/rgd_rat_genes.tsv.gz         gene      RGD:           no
ncbitaxon   taxonomy/ncbi_taxonomy_names       species   NCBITaxon:     yes
cellosaurus ontologies/cellosaurus.tsv.gz      cell_line CVCL:          yes
cl          ontologies/cl.tsv.gz               cell_type CL:            yes
chebi       ontologies/chebi.tsv.gz            chemical  CHEBI:         no
mondo       ontologies/mondo.tsv.gz            disease   MONDO:         no
hpo         ontologies/hp.obo.gz               disease   HP:            no
doid        ontologies/doid.tsv.gz             disease   DOID:          no
uberon      ontologies/uberon.tsv.gz           anatomy   UBERON:        yes
=========== ================================== ========= ============== =======

MeSH serves chemicals only: its disease descriptors and records are MEDIC's concepts,
and linking diseases against both was slower and less accurate on BC5CDR (devel).
Human phenotypes (HPO) serve the ``disease`` type because biotag's disease type is
BioRED's DiseaseOrPhenotypicFeature. Gene concepts of the ``biological-region`` kind
(enhancers, hypersensitive sites: 43k human entries no corpus links to) are left out.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from biotag import paths
from biotag.entity_types import CELL_LINE, CELL_TYPE, CHEMICAL, DISEASE, GENE, SPECIES
from biotag.errors import FormatError, InputError
from biotag.linking.index import IndexInfo, build_index, default_index_dir, list_indexes, read_info
from biotag.linking.normalize import plural
from biotag.linking.ontology import Concept, numbered_lines, read_obo, read_ontology_file, read_tsv, split_list

ANATOMY = "anatomy"
AUTO_INDEX_ENV = "BIOTAG_AUTO_INDEX"  # "0" stops the first-use build (build_on_first_use)
log = logging.getLogger("biotag.linking")
Parser = Callable[[list[Path]], Iterable[Concept]]


@dataclass(frozen=True)
class Source:
    name: str
    files: tuple[str, ...]
    parser: Parser
    types: tuple[str, ...]
    priority: int
    description: str
    licence: str = ""
    default: bool = True  # used by a Linker not told which ontologies to use

    def __post_init__(self) -> None:
        if not (isinstance(self.priority, int) and self.types and all(isinstance(t, str) for t in self.types)):
            raise TypeError(f"source {self.name!r}: types must be names and priority an int")

    def paths(self, root: str | Path | None = None) -> list[Path]:
        """The source's files under ``root`` (default: ``<data root>/dictionaries``);
        a clear InputError names the first that is missing."""
        base = Path(root) if root is not None else dictionaries_root()
        found = [base / f for f in self.files]
        for path in found:
            if not path.is_file():
                raise InputError(
                    f"dictionary {self.name!r} needs {self.files}; not found under {base} "
                    "(give the folder with --source or set BIOTAG_DATA)",
                    path=str(path),
                )
        return found

    def concepts(self, root: str | Path | None = None) -> Iterable[Concept]:
        return self.parser(self.paths(root))

    def build(self, root: str | Path | None = None, out_dir: str | Path | None = None) -> Path:
        """Build this dictionary's index into ``out_dir`` (default: the index folder)."""
        files = self.paths(root)
        return build_index(self.name, self.parser(files), out_dir, priority=self.priority, description=self.description, sources=files)


def dictionaries_root() -> Path:
    return paths.data_root() / "dictionaries"


def _columns(path: Path, minimum: int, skip_header: Callable[[str], bool]) -> Iterator[tuple[int, list[str]]]:
    for number, line in numbered_lines(path):
        if not line or skip_header(line):
            continue
        columns = line.split("\t")
        if len(columns) < minimum:
            raise FormatError(f"expected at least {minimum} TAB-separated columns, found {len(columns)}", path=str(path), line=number)
        yield number, columns


def _is_header(first_column: str) -> Callable[[str], bool]:
    return lambda line: line.startswith("#") or line.split("\t", 1)[0] == first_column


# -- CTD / MEDIC ------------------------------------------------------------------------
def _ctd_alt_id(raw: str) -> str:
    return raw[3:] if raw.startswith("DO:DOID:") else raw  # CTD writes DO:DOID:0060395


def read_ctd_diseases(files: list[Path]) -> Iterator[Concept]:
    """CTD's ``CTD_diseases.tsv``: DiseaseName, DiseaseID, AltDiseaseIDs, Definition,
    ParentIDs, TreeNumbers, ParentTreeNumbers, Synonyms, SlimMappings."""
    for path in files:
        for _, c in _columns(path, 8, lambda line: line.startswith("#")):
            alt = tuple(_ctd_alt_id(a) for a in split_list(c[2]))
            yield Concept(c[1].strip(), c[0].strip(), split_list(c[7]), (DISEASE,), alt_ids=alt, prior=0 if c[1].startswith("MESH:") else 1)


def _medic_id(raw: str) -> str:
    raw = raw.strip()
    return f"OMIM:{raw}" if raw.isdigit() else f"MESH:{raw}"


def read_medic_2012(files: list[Path]) -> Iterator[Concept]:
    """MEDIC's 2012 flat file: ``MeSH|OMIM…||name|synonym…``; the MeSH ID, when there is
    one, identifies the concept (NCBI-disease annotates with it), OMIM IDs are alternates."""
    for path in files:
        for number, line in numbered_lines(path):
            if not line.strip():
                continue
            ids, sep, names = line.partition("||")
            if not sep or not names.strip():
                raise FormatError("expected IDs||name|synonym...", path=str(path), line=number)
            curies = [_medic_id(i) for i in ids.split("|") if i.strip()]
            curies.sort(key=lambda curie: not curie.startswith("MESH:"))
            name, *synonyms = split_list(names)
            yield Concept(curies[0], name, tuple(synonyms), (DISEASE,), alt_ids=tuple(curies[1:]))


# -- MeSH -------------------------------------------------------------------------------
def read_mesh(files: list[Path]) -> Iterator[Concept]:
    """The chemicals of MeSH: descriptors of the D tree (``id name synonyms type
    tree_numbers``; prior 0) and chemical supplementary concept records (``id name
    synonyms type mapped_descriptors``; prior 1: a name shared by both means the
    descriptor)."""
    for path in files:
        for _, c in _columns(path, 4, _is_header("id")):
            if CHEMICAL in split_list(c[3], ","):
                identifier = c[0].strip()
                record = identifier.startswith("MESH:C")  # supplementary records are C-numbers
                xrefs = split_list(c[4]) if record and len(c) > 4 else ()
                yield Concept(identifier, c[1].strip(), split_list(c[2]), (CHEMICAL,), xrefs=xrefs, prior=int(record))


# -- genes ------------------------------------------------------------------------------
_GENE_KIND_RANK = {"protein-coding": 0, "ncRNA": 1, "rRNA": 1, "tRNA": 1, "snRNA": 1, "snoRNA": 1, "scRNA": 1, "pseudo": 3}
_TAXON_RANK = {9606: 0, 10090: 1, 10116: 2}


def _gene_field(value: str) -> tuple[str, ...]:
    return () if value.strip() == "-" else split_list(value)


def read_gene_info(files: list[Path]) -> Iterator[Concept]:
    """NCBI Gene ``gene_info`` files: the symbol is the name; synonyms, the authority's
    symbol and full name, the description and other designations are synonyms. Prior:
    protein-coding first, then human, mouse, rat."""
    for path in files:
        for number, c in _columns(path, 14, lambda line: line.startswith("#")):
            kind = c[9]
            if kind == "biological-region":
                continue
            try:
                taxon = int(c[0])
            except ValueError:
                raise FormatError(f"tax_id {c[0]!r} is not a number", path=str(path), line=number, field="tax_id") from None
            synonyms = (*_gene_field(c[4]), *_gene_field(c[10]), *_gene_field(c[11]), *_gene_field(c[8]), *_gene_field(c[13]))
            prior = 4 * _GENE_KIND_RANK.get(kind, 2) + _TAXON_RANK.get(taxon, 3)
            yield Concept(f"NCBIGene:{c[1].strip()}", c[2].strip(), synonyms, (GENE,), taxon=taxon, prior=prior)


def read_rgd(files: list[Path]) -> Iterator[Concept]:
    """RGD rat genes: ``ID symbol synonyms(;) ensembl``."""
    for path in files:
        for _, c in _columns(path, 2, _is_header("ID")):
            synonyms = split_list(c[2], ";") if len(c) > 2 else ()
            yield Concept(f"RGD:{c[0].strip()}", c[1].strip(), synonyms, (GENE,), taxon=10116)


# -- NCBI Taxonomy ----------------------------------------------------------------------
_RANK_PRIOR = {"species": 1, "subspecies": 2, "varietas": 2, "forma": 2, "strain": 2, "genus": 3, "no_rank": 4}
# The organisms most papers are about win name ties ("mice": Mus musculus, not "Mus sp.").
MODEL_ORGANISMS = frozenset(
    {9606, 10090, 10116, 7227, 6239, 4932, 559292, 562, 7955, 3702, 9031, 9913, 9823, 9615, 8355, 8364, 9544, 10036, 9986, 10141, 4896, 5476, 1773, 287, 1280, 11676, 2697049}
)
_BINOMIAL = re.compile(r"([A-Z][a-z]+) ([a-z][a-z\-]+)")
HUMAN = 9606
# Words for people that LINNAEUS annotates as Homo sapiens ("patients" is its most frequent
# species mention) and so the NER model tags as species; the taxonomy has none of them, and
# without them 3-gram search links "women" to Womersleya or "patients" to an ant family.
HUMAN_WORDS = (
    "patient", "patients", "people", "person", "persons", "individual", "individuals", "participant",
    "participants", "subject", "subjects", "volunteer", "volunteers", "woman", "women", "man", "men",
    "child", "children", "infant", "infants", "adult", "adults", "girl", "girls", "boy", "boys",
)


def taxon_synonyms(name: str, synonyms: tuple[str, ...], rank: str) -> tuple[str, ...]:
    """What papers write besides a species' names: the genus abbreviated ("C. albicans"
    for Candida albicans, as LINNAEUS's dictionary does) and the common names in the
    plural ("mice", "house mice"); for Homo sapiens, the words for people of
    :data:`HUMAN_WORDS`."""
    if rank != "species":
        return ()
    extra = [f"{m[1][0]}. {m[2]}"] if (m := _BINOMIAL.fullmatch(name)) else []
    if name == "Homo sapiens":
        extra += HUMAN_WORDS
    for common in synonyms:
        head, _, last = common.rpartition(" ")
        if last.isalpha() and last.islower():
            extra.append(f"{head} {plural(last)}".strip())
    return tuple(extra)


def read_taxonomy(files: list[Path]) -> Iterator[Concept]:
    """``id name synonyms rank``; prior: model organisms, then species, infraspecific
    ranks, genera, unranked and higher taxa."""
    for path in files:
        for number, c in _columns(path, 4, _is_header("id")):
            identifier, name, rank, synonyms = c[0].strip(), c[1].strip(), c[3].strip(), split_list(c[2])
            taxon = identifier.partition(":")[2]
            if not taxon.isdigit():
                raise FormatError(f"{identifier!r} is not NCBITaxon:<number>", path=str(path), line=number, field="id")
            prior = 0 if int(taxon) in MODEL_ORGANISMS else _RANK_PRIOR.get(rank, 5)
            synonyms += taxon_synonyms(name, synonyms, rank)
            yield Concept(identifier, name, synonyms, (SPECIES,), taxon=int(taxon), prior=prior, extra={"rank": rank})


def read_cellosaurus(files: list[Path]) -> Iterator[Concept]:
    """Cellosaurus names (``CVCL:xxxx name``). Names are shared by many lines ("MEF",
    "HT29"); accessions of digits only are the oldest, most cited lines, so they win
    ties (prior 0, others 1)."""
    for path in files:
        for concept in read_tsv(path, types=(CELL_LINE,)):
            concept.prior = 0 if concept.id.partition(":")[2].isdigit() else 1
            yield concept


def _tsv(types: tuple[str, ...], xref_column: int | None = None) -> Parser:
    def parse(files: list[Path]) -> Iterator[Concept]:
        for path in files:
            yield from read_tsv(path, types=types, xref_column=xref_column)

    return parse


def _obo(types: tuple[str, ...], prefixes: tuple[str, ...]) -> Parser:
    def parse(files: list[Path]) -> Iterator[Concept]:
        for path in files:
            yield from read_obo(path, types=types, id_prefixes=prefixes)

    return parse


_CC_BY = "CC BY 4.0"
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("medic", ("ctd/CTD_diseases.tsv.gz",), read_ctd_diseases, (DISEASE,), 0, "CTD MEDIC diseases (2017)", "CTD terms (cite, link, notify CTD)"),
        Source("medic-2012", ("ctd/medic_06Jul2012.txt.gz",), read_medic_2012, (DISEASE,), 1, "MEDIC 2012-07-06 (NCBI-disease's dictionary)", "CTD terms", default=False),
        Source(
            "mesh",
            ("mesh/mesh_descriptors.tsv.gz", "mesh/mesh_scr_chemical_disease.tsv.gz"),
            read_mesh,
            (CHEMICAL,),
            0,
            "MeSH 2025 chemical descriptors and 2024 chemical supplementary concept records",
            "NLM terms",
        ),
        Source(
            "ncbigene",
            ("genes/Homo_sapiens.gene_info.gz", "genes/Mus_musculus.gene_info.gz"),
            read_gene_info,
            (GENE,),
            0,
            "NCBI Gene, human and mouse",
            "public domain",
        ),
        Source("rgd", ("genes/rgd_rat_genes.tsv.gz",), read_rgd, (GENE,), 5, "RGD rat genes (RGD IDs)", "RGD terms", default=False),
        Source("ncbitaxon", ("taxonomy/ncbi_taxonomy_names.tsv.gz",), read_taxonomy, (SPECIES,), 0, "NCBI Taxonomy names (subset)", "public domain"),
        Source("cellosaurus", ("ontologies/cellosaurus.tsv.gz",), read_cellosaurus, (CELL_LINE,), 0, "Cellosaurus 55 (names only)", _CC_BY),
        Source("cl", ("ontologies/cl.tsv.gz",), _tsv((CELL_TYPE,)), (CELL_TYPE,), 0, "Cell Ontology", _CC_BY),
        Source("chebi", ("ontologies/chebi.tsv.gz",), _tsv((CHEMICAL,)), (CHEMICAL,), 5, "ChEBI (names only)", _CC_BY, default=False),
        Source("mondo", ("ontologies/mondo.tsv.gz",), _tsv((DISEASE,), xref_column=3), (DISEASE,), 5, "MONDO disease ontology", _CC_BY, default=False),
        Source("hpo", ("ontologies/hp.obo.gz",), _obo((DISEASE,), ("HP",)), (DISEASE,), 6, "Human Phenotype Ontology", "HPO licence", default=False),
        Source("doid", ("ontologies/doid.tsv.gz",), _tsv((DISEASE,), xref_column=3), (DISEASE,), 7, "Human Disease Ontology", "CC0 1.0", default=False),
        Source("uberon", ("ontologies/uberon.tsv.gz",), _tsv((ANATOMY,)), (ANATOMY,), 0, "UBERON anatomy", _CC_BY),
    )
}


def build_sources(names: Iterable[str] = ("all",), root: str | Path | None = None, out_dir: str | Path | None = None) -> list[IndexInfo]:
    """Build the indexes of the named dictionaries (``all``: every one) and return what
    their manifests say (build time included)."""
    wanted = list(SOURCES) if any(n.strip().lower() == "all" for n in names) else [get_source(n).name for n in names]
    sources = [SOURCES[name] for name in dict.fromkeys(wanted)]
    for source in sources:  # every file checked before the first (long) build starts
        source.paths(root)
    return [read_info(source.build(root, out_dir)) for source in sources]


def add_ontology(
    path: str | Path,
    name: str,
    types: Iterable[str],
    *,
    out_dir: str | Path | None = None,
    prefix: str | None = None,
    format: str | None = None,
    priority: int = 10,
) -> IndexInfo:
    """Index a user's TSV or OBO file (:func:`~biotag.linking.ontology.read_ontology_file`)
    as ontology ``name`` serving ``types``; linking uses it at once."""
    types = tuple(t.strip() for t in types if t.strip())
    if not types:
        raise InputError("give the entity types the ontology serves, e.g. --types disease", field="types")
    if not Path(path).is_file():
        raise InputError("ontology file not found", path=str(path))
    concepts = read_ontology_file(path, types=types, prefix=prefix, format=format)
    return read_info(build_index(name, concepts, out_dir, types=types, priority=priority, description=f"user ontology from {Path(path).name}", sources=[path]))


def build_on_first_use(out_dir: str | Path | None = None, root: str | Path | None = None) -> list[IndexInfo]:
    """Build the default dictionaries' indexes (:func:`is_default`) when the index
    folder (default :func:`~biotag.linking.index.default_index_dir`) holds none yet and
    the dictionaries are found under ``root`` (default :func:`dictionaries_root`): what
    makes ``biotag annotate`` link on a fresh machine without a separate
    ``biotag build-index``. Dictionaries whose files are missing are left out (the log
    names them). Nothing happens when ``$BIOTAG_AUTO_INDEX`` is ``0``; concurrent
    processes build once (a lock file in the index folder)."""
    if os.environ.get(AUTO_INDEX_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return []
    out = Path(out_dir) if out_dir is not None else default_index_dir()
    base = Path(root) if root is not None else dictionaries_root()
    if list_indexes(out) or not base.is_dir():
        return []
    wanted = [s for s in SOURCES.values() if s.default]
    found = [s for s in wanted if all((base / f).is_file() for f in s.files)]
    if not found:
        return []
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out / ".first-use-build.lock"):
        if list_indexes(out):  # another process built them while this one waited
            return []
        skipped = [s.name for s in wanted if s not in found]
        log.warning(
            "building the linking indexes on first use: %s from %s into %s (once; about a minute for all)%s",
            ", ".join(s.name for s in found), base, out, f"; no files for {', '.join(skipped)}" if skipped else "",
        )
        return [read_info(s.build(base, out)) for s in found]


@contextmanager
def _exclusive(path: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; index builds still rename into place atomically
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def is_default(index_name: str) -> bool:
    """Whether a Linker not told which ontologies to use links with this index (a
    user's own ontology always counts)."""
    source = SOURCES.get(index_name)
    return source is None or source.default


def get_source(name: str) -> Source:
    source = SOURCES.get(name.strip().lower())
    if source is None:
        raise InputError(f"unknown dictionary {name!r}; known: {', '.join(SOURCES)} (or add your own with biotag add-ontology)", field="ontology")
    return source


__all__ = ["ANATOMY", "AUTO_INDEX_ENV", "SOURCES", "Source", "add_ontology", "build_on_first_use", "build_sources", "dictionaries_root", "get_source", "is_default", "read_ctd_diseases", "read_gene_info", "read_medic_2012", "read_mesh", "read_rgd", "read_taxonomy"]
