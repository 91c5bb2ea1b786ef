"""PubMed / MEDLINE XML: ``<PubmedArticleSet>`` (efetch, the annual baseline) or
``<MedlineCitationSet>`` (older MEDLINE/NLM exports).

Reading streams the file with ``lxml.etree.iterparse`` (one record in memory at a time).
Each ``<PubmedArticle>`` (or ``<MedlineCitation>``; ``<PubmedBookArticle>`` too) becomes a
Document:

* id: ``MedlineCitation/PMID``;
* text: ``ArticleTitle``, then each ``Abstract/AbstractText``, joined by ``separator``
  (``"\\n"``); inline markup (``<i>``, ``<sup>``, ``<sub>``, MathML...) is flattened to
  its text;
* passages: ``"title"``, then one ``"abstract"`` passage per ``AbstractText`` whose
  ``Label`` / ``NlmCategory`` attributes become passage attributes ``label`` /
  ``nlm_category``;
* metadata (each only when present): ``journal`` (``Journal/Title``), ``year`` (an int from
  ``PubDate/Year`` or the leading year of ``MedlineDate``), ``mesh`` (a list of
  ``{"descriptor", "ui", "major", "qualifiers": [{"name", "ui", "major"}]}``; ``major``
  and ``qualifiers`` only when set), ``doi`` and ``pmcid`` (``ArticleIdList`` or
  ``ELocationID``).

``DeleteCitation``/``DeleteDocument`` records are skipped; any other record element, a
missing ``PMID``/``Article``/``ArticleTitle`` or a wrong root raises a FormatError naming
the file, the line and the field (with ``skip_bad``, that record is skipped). A syntax
error (truncated file, wrong encoding) ends the file with a FormatError at lxml's line.
Elements of the (large) PubMed DTD that biotag does not use are ignored.

Writing (streamed with ``lxml.etree.xmlfile``) emits a ``<PubmedArticleSet>`` with the same
fields, so ``read(write(docs)) == docs`` for documents read from PubMed XML. The
``"title"`` passage is the title and every other passage an ``AbstractText`` (a document
without passages is written as an abstract with an empty title); entities, relations and
other metadata have no place in PubMed XML and are not written. The output carries only
these fields, so it is not valid against the full PubMed DTD (which requires e.g. dates
and publication types).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from lxml import etree

from biotag.document import Document, Passage
from biotag.errors import FormatError, InputError, ValidationError
from biotag.io import ErrorHandler, handle_bad
from biotag.io._xml import (
    XmlSource,
    check_no_entity_references,
    iter_records,
    open_binary_output,
    source_name,
    unknown_element,
)

ROOTS = ("PubmedArticleSet", "MedlineCitationSet")
RECORDS = ("PubmedArticle", "MedlineCitation", "PubmedBookArticle")
SKIPPED_RECORDS = ("DeleteCitation", "DeleteDocument")
DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
# passage attribute <-> AbstractText attribute
SECTION_ATTRIBUTES = {"label": "Label", "nlm_category": "NlmCategory"}
ARTICLE_IDS = {"doi": "doi", "pmcid": "pmc"}  # metadata key -> ArticleId IdType
_YEAR = re.compile(r"\d{4}")


# -- reading -------------------------------------------------------------------------------
def read(
    path: XmlSource,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    separator: str = "\n",
) -> Iterator[Document]:
    """Stream the Documents of a PubMed/MEDLINE XML file (a path or a binary stream)."""
    name = source_name(path)
    for elem in iter_records(path, ROOTS, skip_bad=skip_bad, on_error=on_error):
        if elem.tag in SKIPPED_RECORDS:
            continue
        try:
            if elem.tag not in RECORDS:
                raise unknown_element(elem, elem.getparent().tag, path=name, document=None)
            check_no_entity_references(elem, path=name, document=elem.findtext(".//PMID"))
            doc = _Record(elem, name).document(separator)
        except InputError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        yield doc


def flat_text(elem: etree._Element) -> str:
    """The text of ``elem`` with inline markup (``<i>``, ``<sup>``...) flattened."""
    return "".join(elem.itertext())


class _Record:
    """One PubMed record, with located errors."""

    def __init__(self, elem: etree._Element, path: str) -> None:
        self.elem = elem
        self.path = path
        self.pmid: str | None = None
        # a book's fields sit in BookDocument, an article's in MedlineCitation/Article
        if elem.tag == "PubmedBookArticle":
            self.citation = self.required(elem, "BookDocument")
            self.article = self.citation
        else:
            self.citation = elem if elem.tag == "MedlineCitation" else self.required(elem, "MedlineCitation")
            self.article = self.required(self.citation, "Article")

    def required(self, parent: etree._Element, path: str) -> etree._Element:
        found = parent.find(path)
        if found is None:
            raise FormatError(
                f"<{parent.tag}> has no <{path}>", path=self.path, line=parent.sourceline, document=self.pmid, field=path
            )
        return found

    def document(self, separator: str) -> Document:
        pmid = (self.required(self.citation, "PMID").text or "").strip()
        if not pmid:
            raise FormatError("empty <PMID>", path=self.path, line=self.citation.sourceline, field="PMID")
        self.pmid = pmid
        title = self.article.find("ArticleTitle")
        if title is None:
            title = self.required(self.article, "Book/BookTitle" if self.elem.tag == "PubmedBookArticle" else "ArticleTitle")
        parts: list[tuple[str, str, dict[str, Any]]] = [("title", flat_text(title), {})]
        for section in self.article.iterfind("Abstract/AbstractText"):
            attributes = {key: section.get(xml) for key, xml in SECTION_ATTRIBUTES.items() if section.get(xml) is not None}
            parts.append(("abstract", flat_text(section), attributes))
        doc = Document.from_passages(pmid, [(kind, text) for kind, text, _ in parts], sep=separator)
        for passage, (_, _, attributes) in zip(doc.passages, parts):
            passage.attributes = attributes
        doc.metadata = self.metadata()
        return doc

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        journal = self.article.find("Journal/Title")
        if journal is not None:
            meta["journal"] = flat_text(journal)
        pub_date = self.article.find("Journal/JournalIssue/PubDate")
        if pub_date is None:
            pub_date = self.article.find("Book/PubDate")
        if pub_date is not None:
            year = _YEAR.search(pub_date.findtext("Year") or pub_date.findtext("MedlineDate") or "")
            if year:
                meta["year"] = int(year.group())
        mesh = [_heading(h) for h in self.citation.iterfind("MeshHeadingList/MeshHeading")]
        if mesh:
            meta["mesh"] = mesh
        for key, id_type in ARTICLE_IDS.items():
            value = self.elem.findtext(f"PubmedData/ArticleIdList/ArticleId[@IdType='{id_type}']")
            if value is None:
                value = self.article.findtext(f"ELocationID[@EIdType='{id_type}']")
            if value is not None:
                meta[key] = value.strip()
        return meta


def _term(elem: etree._Element, name_key: str) -> dict[str, Any]:
    term: dict[str, Any] = {name_key: flat_text(elem)}
    if elem.get("UI") is not None:
        term["ui"] = elem.get("UI")
    if elem.get("MajorTopicYN") == "Y":
        term["major"] = True
    return term


def _heading(heading: etree._Element) -> dict[str, Any]:
    descriptor = heading.find("DescriptorName")
    out = _term(descriptor, "descriptor") if descriptor is not None else {"descriptor": ""}
    qualifiers = [_term(q, "name") for q in heading.iterfind("QualifierName")]
    if qualifiers:
        out["qualifiers"] = qualifiers
    return out


# -- writing -------------------------------------------------------------------------------
def write(docs: Iterable[Document], path: str | Path | IO) -> int:
    """Write a ``<PubmedArticleSet>`` (see the module docstring); returns how many."""
    count = 0
    with open_binary_output(path) as out, etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        xf.write_doctype(DOCTYPE)
        with xf.element("PubmedArticleSet"):
            for doc in docs:
                try:
                    element = _article_element(doc)
                except ValueError as exc:  # lxml refuses control characters XML cannot hold
                    raise ValidationError(f"cannot be written as XML: {exc}", document=doc.id) from None
                except (KeyError, TypeError, AttributeError):
                    message = "not in the layout the PubMed reader writes"
                    raise ValidationError(message, document=doc.id, field="metadata") from None
                xf.write(element, pretty_print=True)
                count += 1
    return count


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrib: str) -> etree._Element:
    elem = etree.SubElement(parent, tag, attrib)
    elem.text = text
    return elem


def _sections(doc: Document) -> tuple[str, list[Passage]]:
    """The title and the abstract sections of a document."""
    if not doc.passages:
        return "", [Passage("abstract", 0, len(doc.text))]
    title = next((p for p in doc.passages if p.type == "title"), None)
    others = [p for p in doc.passages if p is not title]
    return ("" if title is None else doc.text[title.start : title.end]), others


def _add_term(parent: etree._Element, tag: str, term: dict[str, Any], name_key: str) -> None:
    attrib = {"UI": term["ui"]} if "ui" in term else {}
    _sub(parent, tag, term[name_key], **attrib, MajorTopicYN="Y" if term.get("major") else "N")


def _article_element(doc: Document) -> etree._Element:
    meta = doc.metadata
    record = etree.Element("PubmedArticle")
    citation = _sub(record, "MedlineCitation")
    _sub(citation, "PMID", doc.id, Version="1")
    article = _sub(citation, "Article")
    if "journal" in meta or "year" in meta:
        journal = _sub(article, "Journal")
        if "year" in meta:
            _sub(_sub(_sub(journal, "JournalIssue"), "PubDate"), "Year", str(meta["year"]).zfill(4))
        if "journal" in meta:
            _sub(journal, "Title", meta["journal"])
    title, sections = _sections(doc)
    _sub(article, "ArticleTitle", title)
    if "doi" in meta:
        _sub(article, "ELocationID", meta["doi"], EIdType="doi", ValidYN="Y")
    if sections:
        abstract = _sub(article, "Abstract")
        for p in sections:
            attrib = {xml: str(p.attributes[key]) for key, xml in SECTION_ATTRIBUTES.items() if key in p.attributes}
            _sub(abstract, "AbstractText", doc.text[p.start : p.end], **attrib)
    if meta.get("mesh"):
        headings = _sub(citation, "MeshHeadingList")
        for heading in meta["mesh"]:
            elem = _sub(headings, "MeshHeading")
            _add_term(elem, "DescriptorName", heading, "descriptor")
            for qualifier in heading.get("qualifiers", ()):
                _add_term(elem, "QualifierName", qualifier, "name")
    ids = _sub(_sub(record, "PubmedData"), "ArticleIdList")
    _sub(ids, "ArticleId", doc.id, IdType="pubmed")
    for key, id_type in ARTICLE_IDS.items():
        if key in meta:
            _sub(ids, "ArticleId", meta[key], IdType=id_type)
    return record
