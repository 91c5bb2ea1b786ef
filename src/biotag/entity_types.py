"""biotag's unified entity-type inventory and the one mapping onto it.

Every corpus names its entity types its own way (``GENE`` in BC2GM, ``protein`` in
JNLPBA, ``GeneOrGeneProduct`` in BioRED, ``Gene`` in GNormPlus...). Training an
all-types model, merging corpora or evaluating one model on several corpora needs one
vocabulary, so every label is mapped here, in one place, onto :data:`TYPES`:

============ ===================================================================
type         corpus labels
============ ===================================================================
gene         GENE (BC2GM), protein (JNLPBA), Gene, FamilyName, DomainMotif
             (GNormPlus, NLM-Gene), GeneOrGeneProduct (BioRED), Gene_or_gene_product,
             GGP (BioNLP shared tasks)
chemical     Chemical (BC5CDR, NLM-Chem), ChemicalEntity (BioRED), Simple_chemical
disease      Disease, SpecificDisease, DiseaseClass, Modifier, CompositeMention
             (NCBI-disease), DiseaseOrPhenotypicFeature (BioRED), Cancer
species      Species (LINNAEUS, S800), Organism, Taxon, OrganismTaxon (BioRED)
cell_line    cell_line (JNLPBA), CellLine (BioRED, BioID)
cell_type    cell_type (JNLPBA), Cell (NLM-Gene)
dna          DNA (JNLPBA)
rna          RNA (JNLPBA)
variant      DNAMutation, ProteinMutation, SNP (tmVar), SequenceVariant (BioRED)
*(none)*     ChromosomeLocation (NLM-Gene), OTHER, NonStandardRef (NLM-Chem)
============ ===================================================================

Decisions on the doubtful labels, and why:

* ``FamilyName`` and ``DomainMotif`` -> ``gene``: BC2GM, the largest gene corpus,
  tags families ("Src family kinases") and domains ("SH3 domain") as GENE, so a gene
  tagger trained on the union must see them as genes too. To score GNormPlus or
  NLM-Gene on ``Gene`` mentions only, map them to ``None`` with a :class:`TypeMap`.
* ``Cell`` (NLM-Gene) -> ``cell_type``: it mostly names cell types ("germline stem
  cells") but also some cell lines ("HEK293"); ``cell_type`` is the closer fit.
* ``protein`` (JNLPBA) -> ``gene``, while JNLPBA's ``DNA`` and ``RNA`` keep their own
  types: genes and their products are one type in every other corpus (BC2GM, BioRED).
  A model may still keep JNLPBA's guideline apart in a ``protein`` type of its own
  (:meth:`TypeMap.keeping`): the bundled model does, so that its ``gene`` head follows
  BC2GM alone.
* ``Modifier`` and ``CompositeMention`` (NCBI-disease) -> ``disease``: the sentence-
  level NCBI-disease benchmark merges all four classes into ``Disease``.
* ``OTHER`` (NLM-Chem) names proteins and enzymes that are not chemicals, and
  ``NonStandardRef`` names references such as "compound 1a" or "7" that are chemicals
  only inside their paper; neither is scored as a chemical, so both map to ``None``.
* ``ChromosomeLocation`` ("22q11.2") is not an entity biotag tags: ``None``.

Labels are looked up exactly first, then ignoring case, ``_``, ``-`` and spaces, so
``Gene``, ``GENE`` and ``gene`` or ``CellLine`` and ``cell_line`` need one entry. A
user can override or extend the mapping with a dict or a JSON file
(:meth:`TypeMap.from_json`) such as ``{"FamilyName": null, "Anatomy": "anatomy"}``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from biotag.errors import FormatError, InputError

GENE = "gene"
CHEMICAL = "chemical"
DISEASE = "disease"
SPECIES = "species"
CELL_LINE = "cell_line"
CELL_TYPE = "cell_type"
DNA = "dna"
RNA = "rna"
VARIANT = "variant"

#: biotag's entity types, in a fixed order (models lay out their outputs in it).
TYPES: tuple[str, ...] = (GENE, CHEMICAL, DISEASE, SPECIES, CELL_LINE, CELL_TYPE, DNA, RNA, VARIANT)

_GROUPS: dict[str | None, tuple[str, ...]] = {
    GENE: ("GENE", "protein", "Gene_or_gene_product", "GGP", "GeneOrGeneProduct", "FamilyName", "DomainMotif"),
    CHEMICAL: ("Chemical", "Simple_chemical", "ChemicalEntity"),
    DISEASE: (
        "Disease",
        "SpecificDisease",
        "DiseaseClass",
        "Modifier",
        "CompositeMention",
        "DiseaseOrPhenotypicFeature",
        "Cancer",
    ),
    SPECIES: ("Species", "Organism", "Taxon", "OrganismTaxon"),
    CELL_LINE: ("cell_line",),
    CELL_TYPE: ("cell_type", "Cell"),
    DNA: ("DNA",),
    RNA: ("RNA",),
    VARIANT: ("DNAMutation", "ProteinMutation", "SNP", "SequenceVariant"),
    None: ("ChromosomeLocation", "OTHER", "NonStandardRef"),
}

#: Finer types a model may keep apart from the unified type their label maps to (the
#: bundled model's ``protein``: JNLPBA's guideline, beside BC2GM's ``gene``), and that type.
FINER_TYPES: dict[str, str] = {"protein": GENE}

#: corpus label -> unified type (``None``: not an entity type biotag tags).
DEFAULT_LABELS: dict[str, str | None] = {label: unified for unified, labels in _GROUPS.items() for label in labels}

UNKNOWN_POLICIES = ("error", "drop", "keep")


def _loose(label: str) -> str:
    """The lookup key that ignores case and word separators (``CellLine`` == ``cell_line``)."""
    return re.sub(r"[\s_\-]+", "", label).lower()


class TypeMap:
    """A mapping of corpus labels onto unified types, with a policy for unknown labels.

    ``unknown`` says what :meth:`unify` does with a label the map does not name:
    ``"error"`` raises an :class:`~biotag.errors.InputError` (so a typo or a new corpus
    cannot silently lose its entities), ``"drop"`` returns ``None``, ``"keep"`` returns
    the label unchanged.
    """

    def __init__(self, mapping: Mapping[str, str | None], *, unknown: str = "error") -> None:
        if unknown not in UNKNOWN_POLICIES:
            raise InputError(f"unknown policy {unknown!r}; expected one of {UNKNOWN_POLICIES}", field="unknown")
        checked: dict[str, str | None] = {}
        for label, unified in mapping.items():
            if not isinstance(label, str) or not label:
                raise InputError(f"labels must be non-empty strings, got {label!r}", field="type_map")
            if unified is not None and (not isinstance(unified, str) or not unified):
                raise InputError(f"label {label!r} must map to a type name or null, got {unified!r}", field="type_map")
            checked[label] = unified
        # read-only, so the shared default map cannot be changed by accident
        self.mapping: Mapping[str, str | None] = MappingProxyType(checked)
        self.unknown = unknown
        # every unified type maps to itself, so unified data passes through unchanged
        self._loose = {_loose(t): t for t in self.mapping.values() if t is not None}
        self._loose.update({_loose(label): unified for label, unified in self.mapping.items()})

    def updated(self, overrides: Mapping[str, str | None], *, unknown: str | None = None) -> "TypeMap":
        """A copy with ``overrides`` taking precedence over this map's entries."""
        overridden = {_loose(label) for label in overrides}
        merged = {label: t for label, t in self.mapping.items() if _loose(label) not in overridden}
        merged.update(overrides)
        return TypeMap(merged, unknown=unknown or self.unknown)

    def keeping(self, types: Iterable[str]) -> "TypeMap":
        """A copy in which each label naming one of ``types`` that is a :data:`FINER_TYPES`
        type (loosely) maps to that type.

        A model's own finer types take precedence over the unified inventory: a model with a
        ``protein`` type of its own (JNLPBA's guideline, kept apart from BC2GM's ``gene``)
        learns and is scored on JNLPBA's ``protein`` label as ``protein``, not as ``gene``.
        For a model of unified types, or of raw corpus labels (``unify_types`` off), this is
        the same map."""
        own = {_loose(t): t for t in types if t in FINER_TYPES}
        overrides = {label: own[_loose(label)] for label in self.mapping if _loose(label) in own and self.mapping[label] != own[_loose(label)]}
        return self.updated(overrides) if overrides else self

    @classmethod
    def from_json(cls, path: str | Path, *, base: "TypeMap | None" = None, unknown: str | None = None) -> "TypeMap":
        """Read overrides ``{"label": "type" or null, ...}`` from a JSON file and apply them
        on top of ``base`` (biotag's default map unless given)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"cannot read the type map: {exc.strerror or exc}", path=str(path)) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            raise FormatError(f"not valid JSON: {exc}", path=str(path), line=line) from None
        if not isinstance(data, dict):
            raise FormatError(f"expected a JSON object of label -> type, got {type(data).__name__}", path=str(path))
        try:
            return (base or DEFAULT_TYPE_MAP).updated(data, unknown=unknown)
        except InputError as exc:
            raise exc.located(path=str(path)) from None

    @classmethod
    def coerce(cls, value: "TypeMap | Mapping[str, str | None] | None") -> "TypeMap":
        """A TypeMap from ``None`` (biotag's default), a TypeMap, or a dict.

        A plain dict is a partial renaming: labels it does not name are kept as they are.
        """
        if value is None:
            return DEFAULT_TYPE_MAP
        if isinstance(value, TypeMap):
            return value
        return cls(value, unknown="keep")

    def unify(self, label: str) -> str | None:
        """The unified type of ``label``, or ``None`` when it is not a type biotag tags."""
        if label in self.mapping:
            return self.mapping[label]
        key = _loose(label)
        if key in self._loose:
            return self._loose[key]
        if self.unknown == "keep":
            return label
        if self.unknown == "drop":
            return None
        raise InputError(
            f"entity label {label!r} has no unified type; map it to one of {', '.join(TYPES)} "
            "(or to null to ignore it) with a TypeMap, e.g. a JSON file passed as type map",
            field="type",
        )

    __call__ = unify

    def __contains__(self, label: str) -> bool:
        return label in self.mapping or _loose(label) in self._loose

    def as_dict(self) -> dict[str, str | None]:
        """The label -> type entries (the format :meth:`from_json` reads)."""
        return dict(self.mapping)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TypeMap) and (self.mapping, self.unknown) == (other.mapping, other.unknown)

    def __repr__(self) -> str:
        return f"TypeMap({len(self.mapping)} labels, unknown={self.unknown!r})"


#: biotag's own mapping (:data:`DEFAULT_LABELS`), strict about unknown labels.
DEFAULT_TYPE_MAP = TypeMap(DEFAULT_LABELS)


def default_type_map(*, unknown: str = "error") -> TypeMap:
    """biotag's own mapping with the given policy for unknown labels."""
    return DEFAULT_TYPE_MAP if unknown == DEFAULT_TYPE_MAP.unknown else TypeMap(DEFAULT_LABELS, unknown=unknown)


def unify(label: str, type_map: TypeMap | Mapping[str, str | None] | None = None) -> str | None:
    """The unified type of a corpus label (``"GeneOrGeneProduct"`` -> ``"gene"``), or
    ``None`` for labels biotag does not tag (``"ChromosomeLocation"``). Unknown labels
    raise an InputError unless ``type_map`` says otherwise."""
    return TypeMap.coerce(type_map).unify(label)


def unified_types(labels: Iterable[str], type_map: TypeMap | None = None) -> tuple[str, ...]:
    """The unified types that ``labels`` map to, in :data:`TYPES` order (others after, sorted)."""
    tmap = type_map or DEFAULT_TYPE_MAP
    found = {t for t in (tmap.unify(label) for label in labels) if t is not None}
    return tuple(t for t in TYPES if t in found) + tuple(sorted(found - set(TYPES)))


__all__ = [
    "TYPES",
    "FINER_TYPES",
    "DEFAULT_LABELS",
    "DEFAULT_TYPE_MAP",
    "TypeMap",
    "default_type_map",
    "unify",
    "unified_types",
    "GENE",
    "CHEMICAL",
    "DISEASE",
    "SPECIES",
    "CELL_LINE",
    "CELL_TYPE",
    "DNA",
    "RNA",
    "VARIANT",
]
