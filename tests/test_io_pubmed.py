"""PubMed / MEDLINE XML: efetch-style records, MEDLINE citation sets, real texts, errors."""

import io

import pytest

import biotag.io
from biotag.document import Document, Passage
from biotag.errors import FormatError, ValidationError
from biotag.io import pubmed_xml, pubtator

# as efetch returns it (trimmed): a structured abstract with labels, inline markup, MeSH
# headings with qualifiers, a DOI, a MedlineDate; a record without abstract; a deletion
EFETCH = """<?xml version="1.0" ?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">
<PubmedArticleSet>
<PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM">
    <PMID Version="1">31000001</PMID>
    <DateCompleted><Year>2019</Year></DateCompleted>
    <Article PubModel="Print">
      <Journal>
        <ISSN IssnType="Electronic">1234-5678</ISSN>
        <JournalIssue CitedMedium="Internet"><Volume>12</Volume><PubDate><Year>2019</Year><Month>Apr</Month></PubDate></JournalIssue>
        <Title>Journal of <i>Testing</i></Title>
      </Journal>
      <ArticleTitle>Effect of <i>BRCA1</i> on Ca<sup>2+</sup> and H<sub>2</sub>O.</ArticleTitle>
      <ELocationID EIdType="doi" ValidYN="Y">10.1000/elocation</ELocationID>
      <Abstract>
        <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">The <i>BRCA1</i> gene matters.</AbstractText>
        <AbstractText Label="METHODS" NlmCategory="METHODS">We measured 10<sup>-3</sup> M.</AbstractText>
        <CopyrightInformation>(c) 2019 Someone</CopyrightInformation>
      </Abstract>
      <AuthorList><Author><LastName>Doe</LastName></Author></AuthorList>
    </Article>
    <MeshHeadingList>
      <MeshHeading><DescriptorName UI="D006801" MajorTopicYN="N">Humans</DescriptorName></MeshHeading>
      <MeshHeading>
        <DescriptorName UI="D019398" MajorTopicYN="Y">Genes, BRCA1</DescriptorName>
        <QualifierName UI="Q000235" MajorTopicYN="N">genetics</QualifierName>
      </MeshHeading>
    </MeshHeadingList>
  </MedlineCitation>
  <PubmedData>
    <ArticleIdList>
      <ArticleId IdType="pubmed">31000001</ArticleId>
      <ArticleId IdType="doi">10.1000/xyz.123</ArticleId>
      <ArticleId IdType="pmc">PMC6000001</ArticleId>
    </ArticleIdList>
  </PubmedData>
</PubmedArticle>
<PubmedArticle>
  <MedlineCitation Status="PubMed-not-MEDLINE" Owner="NLM">
    <PMID Version="1">31000002</PMID>
    <Article PubModel="Print">
      <Journal><JournalIssue><PubDate><MedlineDate>1998 Dec-1999 Jan</MedlineDate></PubDate></JournalIssue></Journal>
      <ArticleTitle>No abstract here.</ArticleTitle>
    </Article>
  </MedlineCitation>
</PubmedArticle>
<DeleteCitation><PMID Version="1">123</PMID></DeleteCitation>
</PubmedArticleSet>
"""

MEDLINE_SET = """<MedlineCitationSet>
<MedlineCitation Owner="NLM" Status="MEDLINE"><PMID>10000001</PMID>
  <Article><Journal><Title>Old Journal</Title></Journal><ArticleTitle>Old title</ArticleTitle>
  <Abstract><AbstractText>Old abstract.</AbstractText></Abstract></Article>
</MedlineCitation>
</MedlineCitationSet>
"""


def _read_string(tmp_path, content: str, name: str = "records.pubmed.xml", **options):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return list(pubmed_xml.read(path, **options))


def test_efetch_records_map_onto_documents(tmp_path):
    first, second = _read_string(tmp_path, EFETCH)
    assert first.id == "31000001"
    title = "Effect of BRCA1 on Ca2+ and H2O."  # inline markup flattened
    assert first.text == f"{title}\nThe BRCA1 gene matters.\nWe measured 10-3 M."
    assert first.passages == [
        Passage("title", 0, len(title)),
        Passage("abstract", 33, 56, {"label": "BACKGROUND", "nlm_category": "BACKGROUND"}),
        Passage("abstract", 57, 76, {"label": "METHODS", "nlm_category": "METHODS"}),
    ]
    assert [first.text[p.start : p.end] for p in first.passages][1] == "The BRCA1 gene matters."
    assert first.metadata == {
        "journal": "Journal of Testing",
        "year": 2019,
        "mesh": [
            {"descriptor": "Humans", "ui": "D006801"},
            {"descriptor": "Genes, BRCA1", "ui": "D019398", "major": True, "qualifiers": [{"name": "genetics", "ui": "Q000235"}]},
        ],
        "doi": "10.1000/xyz.123",  # PubmedData's id wins over ELocationID
        "pmcid": "PMC6000001",
    }
    assert second.text == "No abstract here." and [p.type for p in second.passages] == ["title"]
    assert second.metadata == {"year": 1998}
    # read(write(docs)) == docs, through a path and through a stream
    out = tmp_path / "out.pubmed.xml"
    assert pubmed_xml.write([first, second], out) == 2
    assert list(biotag.io.read(out)) == [first, second]
    stream = io.BytesIO()
    pubmed_xml.write([first, second], stream)
    stream.seek(0)
    assert list(pubmed_xml.read(stream)) == [first, second]


def test_medline_citation_set_and_separator_option(tmp_path):
    (doc,) = _read_string(tmp_path, MEDLINE_SET, separator=" ")
    assert doc.id == "10000001" and doc.text == "Old title Old abstract."
    assert doc.metadata == {"journal": "Old Journal"}
    assert biotag.io.guess_format(tmp_path / "records.pubmed.xml") == "pubmed-xml"


def test_book_articles_are_read(tmp_path):
    book = (
        "<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID>20301295</PMID>"
        "<Book><BookTitle>GeneReviews</BookTitle><PubDate><Year>1993</Year></PubDate></Book>"
        "<Abstract><AbstractText Label='SUMMARY'>A summary.</AbstractText></Abstract>"
        "</BookDocument></PubmedBookArticle></PubmedArticleSet>"
    )
    (doc,) = _read_string(tmp_path, book)
    assert (doc.id, doc.text, doc.metadata) == ("20301295", "GeneReviews\nA summary.", {"year": 1993})
    assert doc.passages[1].attributes == {"label": "SUMMARY"}


def test_real_pubtator_texts_round_trip(shared_data, tmp_path):
    """Real titles and abstracts (Greek letters, symbols, markup-like characters) written
    as PubMed XML and read back with PubTator's separator give the same texts."""
    docs = list(pubtator.read(shared_data / "pubtator/bc5cdr/CDR_DevelopmentSet.PubTator.txt"))
    docs += pubtator.read(shared_data / "pubtator/biored/Dev.PubTator")
    out = tmp_path / "real.xml"
    pubmed_xml.write(docs, out)
    back = list(pubmed_xml.read(out, separator=" "))
    assert [(d.id, d.text, [(p.type, p.start, p.end) for p in d.passages]) for d in back] == [
        (d.id, d.text, [(p.type, p.start, p.end) for p in d.passages]) for d in docs
    ]
    again = tmp_path / "again.xml"
    pubmed_xml.write(back, again)
    assert list(pubmed_xml.read(again, separator=" ")) == back


def test_documents_from_elsewhere_are_written_as_title_and_sections(tmp_path):
    no_passages = Document("p1", "Just some text.")
    sections = Document.from_passages("p2", [("title", "T"), ("results", "R1"), ("methods", "M")])
    sections.passages[1].attributes = {"label": "RESULTS"}
    pubmed_xml.write([no_passages, sections], tmp_path / "o.xml")
    a, b = pubmed_xml.read(tmp_path / "o.xml")
    assert a.text == "\nJust some text." and [p.type for p in a.passages] == ["title", "abstract"]
    assert b.text == "T\nR1\nM" and b.passages[1].attributes == {"label": "RESULTS"}


def test_writer_refuses_characters_xml_cannot_hold():
    with pytest.raises(ValidationError) as err:
        pubmed_xml.write([Document.from_passages("bad", [("title", "a\x00b")])], io.BytesIO())
    assert err.value.document == "bad"


# -- errors ------------------------------------------------------------------------------------
def _one_record(citation: str) -> str:
    return f"<PubmedArticleSet>\n<PubmedArticle>\n{citation}\n</PubmedArticle>\n</PubmedArticleSet>"


@pytest.mark.parametrize(
    "content, line, document, field, needle",
    [
        (_one_record("<MedlineCitation>\n<Article><ArticleTitle>x</ArticleTitle></Article></MedlineCitation>"), 3, None, "PMID", "no <PMID>"),
        (_one_record("<MedlineCitation>\n<PMID> </PMID><Article/></MedlineCitation>"), 3, None, "PMID", "empty <PMID>"),
        (_one_record("<MedlineCitation><PMID>7</PMID>\n<Article><Abstract/></Article></MedlineCitation>"), 4, "7", "ArticleTitle", "no <ArticleTitle>"),
        (_one_record("<MedlineCitation><PMID>7</PMID></MedlineCitation>"), 3, None, "Article", "no <Article>"),
        (_one_record("<PubmedData/>"), 2, None, "MedlineCitation", "no <MedlineCitation>"),
        ("<PubmedArticleSet>\n<Unexpected/>\n</PubmedArticleSet>", 2, None, "PubmedArticleSet", "unexpected element <Unexpected>"),
        ("<collection/>", 1, None, "root", "expected <PubmedArticleSet> or <MedlineCitationSet>"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path, content, line, document, field, needle):
    with pytest.raises(FormatError) as err:
        _read_string(tmp_path, content)
    e = err.value
    assert (e.path, e.line, e.document, e.field) == (str(tmp_path / "records.pubmed.xml"), line, document, field)
    assert needle in e.message


def test_truncated_file_yields_what_came_before_then_fails_at_lxmls_line(tmp_path):
    truncated = EFETCH[: EFETCH.index("<ArticleTitle>No abstract")]
    errors = []
    docs = _read_string(tmp_path, truncated, skip_bad=True, on_error=errors.append)
    assert [d.id for d in docs] == ["31000001"]
    assert errors[0].field == "xml" and errors[0].line == truncated.count("\n") + 1
    with pytest.raises(FormatError, match="malformed XML"):
        _read_string(tmp_path, truncated)


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "latin1.xml"
    path.write_bytes(MEDLINE_SET.replace("Old abstract", "Résumé").encode("latin-1"))
    with pytest.raises(FormatError) as err:
        list(pubmed_xml.read(path))
    assert (err.value.line, err.value.field) == (4, "encoding")


def test_skip_bad_skips_the_bad_record_and_reads_on(tmp_path):
    content = EFETCH.replace("<PMID Version=\"1\">31000001</PMID>", "")
    errors = []
    docs = _read_string(tmp_path, content, skip_bad=True, on_error=errors.append)
    assert [d.id for d in docs] == ["31000002"]
    assert [e.field for e in errors] == ["PMID"]
