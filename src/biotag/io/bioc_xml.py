"""BioC XML: ``<collection>`` of ``<document>``s with passages, annotations and relations.

Reading streams the file with ``lxml.etree.iterparse`` and frees every document once it is
mapped, so memory stays flat however long the collection. Each ``<document>`` is turned
into the BioC-JSON layout and mapped by :mod:`biotag.io._bioc_common` (see there for the
mapping, shared with BioC JSON). The structure is checked strictly (BioC.dtd): an
unexpected element, an infon without ``key``, a bad offset or an annotation text that does
not match the passage text raises a :class:`~biotag.errors.FormatError` with the file, the
line of the element at fault, the document id and the field; with ``skip_bad`` only that
document is skipped. A syntax error (truncated file, bytes that are not in the declared
encoding) ends the file with a FormatError at the line lxml reports. The collection's
``source``/``date``/``key``/``infon`` header is not part of any Document and is not read.

Infon values are text in XML. So that Document attributes and metadata that are not text
(numbers, lists, objects) survive a round trip, the writer stores them as JSON under the key
``json:<key>`` and the reader decodes such infons back. An infon key given several times is
read as the list of its values.

Writing streams too (``lxml.etree.xmlfile``): one ``<document>`` element is built at a time,
with one ``<passage>`` per Document passage.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from lxml import etree

from biotag.document import Document
from biotag.errors import FormatError, InputError, ValidationError
from biotag.io import ErrorHandler, handle_bad
from biotag.io._bioc_common import document_from_bioc, document_to_bioc
from biotag.io._xml import (
    XmlSource,
    check_no_entity_references,
    child_elements,
    iter_records,
    open_binary_output,
    source_name,
    unknown_element,
)

JSON_INFON_PREFIX = "json:"
DOCTYPE = '<!DOCTYPE collection SYSTEM "BioC.dtd">'
COLLECTION_HEADER = ("source", "date", "key", "infon")

# element -> the child elements BioC.dtd allows in it
_CHILDREN = {
    "document": {"id", "infon", "passage", "relation"},
    "passage": {"infon", "offset", "text", "sentence", "annotation", "relation"},
    "sentence": {"infon", "offset", "text", "annotation", "relation"},
    "annotation": {"infon", "location", "text"},
    "relation": {"infon", "node"},
}
# element -> the attributes read from it
_ATTRIBUTES = {
    "annotation": ("id",),
    "relation": ("id",),
    "location": ("offset", "length"),
    "node": ("refid", "role"),
}
_SCALARS = ("id", "offset", "text")
_LIST_KEYS = {
    "passage": "passages",
    "sentence": "sentences",
    "annotation": "annotations",
    "relation": "relations",
    "location": "locations",
    "node": "nodes",
}


# -- reading -------------------------------------------------------------------------------
def read(
    path: XmlSource,
    *,
    skip_bad: bool = False,
    on_error: ErrorHandler | None = None,
    check_text: bool = True,
) -> Iterator[Document]:
    """Stream the Documents of a BioC XML file (a path or a binary stream).

    ``check_text=False`` accepts annotations whose ``<text>`` differs from the passage
    text at their locations (the entity text is then taken from the passage)."""
    name = source_name(path)
    for elem in iter_records(path, ("collection",), skip_bad=skip_bad, on_error=on_error):
        if elem.tag in COLLECTION_HEADER:
            continue
        try:
            if elem.tag != "document":
                raise unknown_element(elem, "collection", path=name, document=None)
            check_no_entity_references(elem, path=name, document=elem.findtext("id"))
            doc = document_from_bioc(_XmlDocument(name).convert(elem), path=name, check_text=check_text)
        except InputError as err:
            handle_bad(err, skip_bad, on_error)
            continue
        yield doc


class _XmlDocument:
    """Turns one ``<document>`` element into the BioC-JSON layout, checking its structure."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.document: str | None = None

    def error(self, message: str, elem: etree._Element, field: str) -> FormatError:
        return FormatError(message, path=self.path, line=elem.sourceline, document=self.document, field=field)

    def convert(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"_line": elem.sourceline}
        for attribute in _ATTRIBUTES.get(elem.tag, ()):
            if attribute in elem.attrib:
                out[attribute] = elem.attrib[attribute]
        infons: list[tuple[str, Any]] = []
        for child in child_elements(elem):
            tag = child.tag
            if tag not in _CHILDREN.get(elem.tag, ()):
                raise unknown_element(child, elem.tag, path=self.path, document=self.document)
            if tag == "infon":
                infons.append(self._infon(child))
            elif tag in _SCALARS:
                out[tag] = self._scalar(child)
                if tag == "id" and elem.tag == "document":
                    self.document = out["id"] = out["id"].strip()
            else:
                out.setdefault(_LIST_KEYS[tag], []).append(self.convert(child))
        if infons:
            out["infons"] = _group_infons(infons)
        return out

    def _scalar(self, child: etree._Element) -> str:
        inner = next(child_elements(child), None)
        if inner is not None:
            raise unknown_element(inner, child.tag, path=self.path, document=self.document)
        return child.text or ""

    def _infon(self, child: etree._Element) -> tuple[str, Any]:
        key = child.get("key")
        if key is None:
            raise self.error("<infon> has no key attribute", child, "infon.key")
        value: Any = self._scalar(child)
        if key.startswith(JSON_INFON_PREFIX):
            try:
                return key[len(JSON_INFON_PREFIX) :], json.loads(value)
            except (ValueError, RecursionError):
                pass  # not ours: keep the infon as it is written
        return key, value


def _group_infons(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given several times becomes the list of its values."""
    counts = Counter(key for key, _ in pairs)
    out: dict[str, Any] = {}
    for key, value in pairs:
        if counts[key] > 1:
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
    return out


# -- writing -------------------------------------------------------------------------------
def write(
    docs: Iterable[Document],
    path: str | Path | IO,
    *,
    source: str = "biotag",
    date: str | None = None,
    key: str = "biotag.key",
) -> int:
    """Write a BioC collection (``date`` defaults to today, ISO format); returns the
    number of documents written."""
    count = 0
    with open_binary_output(path) as out, etree.xmlfile(out, encoding="utf-8") as xf:
        xf.write_declaration()
        xf.write_doctype(DOCTYPE)
        with xf.element("collection"):
            for tag, value in (("source", source), ("date", date or datetime.date.today().isoformat()), ("key", key)):
                xf.write(_leaf(tag, value), pretty_print=True)
            for doc in docs:
                try:
                    element = _document_element(document_to_bioc(doc))
                except ValueError as exc:  # lxml refuses control characters XML cannot hold
                    raise ValidationError(f"cannot be written as XML: {exc}", document=doc.id) from None
                xf.write(element, pretty_print=True)
                count += 1
    return count


def _leaf(tag: str, text: str, **attrib: str) -> etree._Element:
    elem = etree.Element(tag, attrib)
    elem.text = text
    return elem


def _add_infons(parent: etree._Element, infons: dict[str, Any]) -> None:
    for key, value in infons.items():
        # a key that already starts with the prefix is encoded too, so it reads back as written
        if isinstance(value, str) and not key.startswith(JSON_INFON_PREFIX):
            parent.append(_leaf("infon", value, key=key))
        else:
            parent.append(_leaf("infon", json.dumps(value, ensure_ascii=False), key=JSON_INFON_PREFIX + key))


def _relation_element(raw: dict[str, Any]) -> etree._Element:
    elem = etree.Element("relation", id=raw["id"])
    _add_infons(elem, raw["infons"])
    for node in raw["nodes"]:
        etree.SubElement(elem, "node", refid=node["refid"], role=node["role"])
    return elem


def _document_element(raw: dict[str, Any]) -> etree._Element:
    doc = etree.Element("document")
    doc.append(_leaf("id", raw["id"]))
    _add_infons(doc, raw["infons"])
    for passage in raw["passages"]:
        elem = etree.SubElement(doc, "passage")
        _add_infons(elem, passage["infons"])
        elem.append(_leaf("offset", str(passage["offset"])))
        elem.append(_leaf("text", passage["text"]))
        for annotation in passage["annotations"]:
            ann = etree.SubElement(elem, "annotation", id=annotation["id"])
            _add_infons(ann, annotation["infons"])
            for loc in annotation["locations"]:
                etree.SubElement(ann, "location", offset=str(loc["offset"]), length=str(loc["length"]))
            ann.append(_leaf("text", annotation["text"]))
        for relation in passage["relations"]:
            elem.append(_relation_element(relation))
    for relation in raw["relations"]:
        doc.append(_relation_element(relation))
    return doc
