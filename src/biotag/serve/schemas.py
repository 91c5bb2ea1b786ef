"""Pydantic models of the REST API: they are the OpenAPI schema at ``/openapi.json``.

The document models mirror :meth:`biotag.document.Document.to_dict` field for field
(offsets 0-based, ``end`` exclusive, into ``text``). Incoming documents are checked by
pydantic for shape, then by :meth:`Document.from_dict` for consistency (offsets inside
the text, entity text matching), which names the document and field at fault.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

SpanPair = tuple[int, int]


class OutputFormat(str, Enum):
    """Response formats (``?output=``)."""

    json = "json"
    jsonl = "jsonl"
    pubtator = "pubtator"
    bioc_xml = "bioc-xml"
    bioc_json = "bioc-json"


class InputFormat(str, Enum):
    """Formats accepted as a raw request body by ``POST /annotate/file`` (``?format=``)."""

    pubtator = "pubtator"
    bioc_xml = "bioc-xml"
    bioc_json = "bioc-json"
    pubmed_xml = "pubmed-xml"
    jsonl = "jsonl"
    conll = "conll"
    text = "text"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LinkModel(_Strict):
    ontology: str = Field(examples=["NCBIGene"])
    id: str = Field(examples=["672"])
    name: str | None = Field(None, examples=["BRCA1"])
    score: float | None = None


class EntityModel(_Strict):
    id: str = Field(examples=["T1"])
    type: str = Field(examples=["gene"])
    spans: list[SpanPair] = Field(description="[start, end) character offsets; several for a discontinuous mention")
    text: str = Field(description="the covered text, fragments joined by one space")
    score: float | None = None
    source: str | None = Field(None, description='which step made it ("ner", "gold"...)')
    links: list[LinkModel] = []
    attributes: dict[str, Any] = {}


class ArgumentModel(_Strict):
    role: str
    entity: str | None = Field(None, description="id of an entity of this document")
    concept: str | None = Field(None, description="a concept id, for document-level relations")


class RelationModel(_Strict):
    id: str
    type: str
    arguments: list[ArgumentModel]
    score: float | None = None
    source: str | None = None
    attributes: dict[str, Any] = {}


class PassageModel(_Strict):
    type: str = Field(examples=["title", "abstract"])
    start: int
    end: int
    attributes: dict[str, Any] = {}


class DocumentModel(_Strict):
    """biotag's document JSON (one line of ``jsonl`` output)."""

    id: str
    text: str
    passages: list[PassageModel] = []
    entities: list[EntityModel] = []
    relations: list[RelationModel] = []
    sentences: list[SpanPair] | None = None
    tokens: list[SpanPair] | None = None
    metadata: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []


class TextRequest(_Strict):
    text: str = Field(description="the text to annotate", examples=["BRCA1 mutations cause breast cancer."])
    id: str = Field("text", min_length=1, max_length=256, description="document id given to the result")


class BatchRequest(_Strict):
    """Exactly one of ``texts`` (ids ``"1"``, ``"2"``... in order) or ``documents``
    (annotations they already hold are kept)."""

    texts: list[str] | None = None
    documents: list[DocumentModel] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> BatchRequest:
        if (self.texts is None) == (self.documents is None):
            raise ValueError("give exactly one of 'texts' or 'documents'")
        return self


class DocumentList(BaseModel):
    documents: list[DocumentModel]


class ErrorModel(BaseModel):
    """Every error response has this shape."""

    error: str = Field(description="machine-readable code", examples=["invalid_input"])
    message: str = Field(description="what is wrong, and where")
    document: str | None = Field(None, description="id (or position) of the document at fault")
    field: str | None = Field(None, description="the field at fault")
    line: int | None = Field(None, description="line of the request body at fault")
    details: list[dict[str, Any]] | None = Field(None, description="every problem found, for validation errors")


class HealthModel(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyModel(BaseModel):
    status: str = Field(examples=["ready"])
    model: str | None = Field(None, description="model directory, when known")
    types: list[str] = Field([], description="entity types the model tags")
    auth: bool = Field(description="whether the annotate endpoints need an API key")
