"""The REST service through FastAPI's TestClient: endpoints, formats, limits, timeouts,
authentication and error responses. Most tests inject a fake annotator (fast and
deterministic); the first ones load a tiny trained model through the real lifespan."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service needs fastapi (pip install fastapi uvicorn httpx)")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from biotag import io  # noqa: E402
from biotag.cli import app as cli_app  # noqa: E402
from biotag.document import Document, Link  # noqa: E402
from biotag.errors import InputError  # noqa: E402
from biotag.serve import ServeSettings, create_app  # noqa: E402


# -- models -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy_model(toy_trained) -> Path:
    return toy_trained[0]


# what the fake annotator tags, with a link, wherever the word occurs
FAKE_LEXICON = {"Insulin": ("chemical", Link("MESH", "D007328", "Insulin")), "BRCA1": ("gene", Link("NCBIGene", "672", "BRCA1"))}


class FakeAnnotator:
    """Tags the words of FAKE_LEXICON; records how many calls ran at once; can be made
    to block until released (``gate``) to test timeouts and concurrency."""

    types = ("chemical", "gene")

    def __init__(self, gate: threading.Event | None = None, lexicon: dict = FAKE_LEXICON) -> None:
        self.gate = gate
        self.lexicon = lexicon
        self.entered = threading.Event()
        self.active = 0
        self.most_active = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, docs: list[Document]) -> list[Document]:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.entered.set()
        try:
            if self.gate is not None:
                self.gate.wait(10)
            for doc in docs:
                for word, (etype, link) in self.lexicon.items():
                    start = doc.text.find(word)
                    while start >= 0:
                        doc.add_entity(start, start + len(word), etype, score=0.5, source="fake", links=[link])
                        start = doc.text.find(word, start + 1)
            return docs
        finally:
            with self._lock:
                self.active -= 1


def client_for(annotator: FakeAnnotator | None = None, **settings) -> TestClient:
    settings.setdefault("api_keys_env", None)  # the tests' environment must not turn auth on
    app = create_app(ServeSettings(**settings), annotator_factory=lambda s: annotator or FakeAnnotator())
    return TestClient(app)


@pytest.fixture
def client():
    with client_for() as c:
        yield c


# -- the real model through the lifespan --------------------------------------------------------
def test_tiny_model_is_loaded_at_startup_and_annotates(toy_model):
    app = create_app(ServeSettings(model=toy_model, api_keys_env=None))
    with TestClient(app) as c:
        ready = c.get("/ready").json()
        assert ready["status"] == "ready" and ready["types"] == ["Thing"] and ready["auth"] is False
        response = c.post("/annotate", json={"text": "the Insulin of Kinase was the cell .", "id": "q1"})
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        doc = Document.from_dict(response.json())  # validates offsets and texts
        assert doc.id == "q1" and [(e.text, e.type, e.source) for e in doc.entities] == [("Insulin", "Thing", "ner")]
        batch = c.post("/annotate/batch", json={"texts": ["the Aspirin and the Kinase .", "nothing here ."]}).json()
        assert [[e["text"] for e in d.get("entities", [])] for d in batch["documents"]] == [["Aspirin", "Kinase"], []]


def test_not_ready_before_startup():
    app = create_app(ServeSettings(api_keys_env=None), annotator_factory=lambda s: FakeAnnotator())
    c = TestClient(app)  # not entered: the lifespan has not run, no model is loaded
    assert c.get("/health").json() == {"status": "ok"}
    for response in (c.get("/ready"), c.post("/annotate", json={"text": "x"})):
        assert response.status_code == 503 and response.json()["error"] == "not_ready"


# -- endpoints and formats ----------------------------------------------------------------------
def test_annotate_one_text(client):
    body = client.post("/annotate", json={"text": "BRCA1 binds Insulin."}).json()
    assert body["id"] == "text"
    assert [(e["text"], e["type"], e["links"][0]["id"]) for e in body["entities"]] == [
        ("Insulin", "chemical", "D007328"),
        ("BRCA1", "gene", "672"),
    ]


def test_batch_of_texts_and_of_documents(client):
    texts = client.post("/annotate/batch", json={"texts": ["BRCA1 here", "nothing", "Insulin"]}).json()["documents"]
    assert [d["id"] for d in texts] == ["1", "2", "3"]
    assert [[e["text"] for e in d.get("entities", [])] for d in texts] == [["BRCA1"], [], ["Insulin"]]

    given = Document.from_passages("pm1", [("title", "Insulin and BRCA1."), ("abstract", "A gold span.")])
    given.add_entity(given.text.index("gold"), given.text.index(" span"), "gold_thing", source="gold")
    docs = client.post("/annotate/batch", json={"documents": [given.to_dict()]}).json()["documents"]
    back = Document.from_dict(docs[0])
    assert back.passages == given.passages
    assert sorted((e.text, e.source) for e in back.entities) == [("BRCA1", "fake"), ("Insulin", "fake"), ("gold", "gold")]


def _body_in(fmt: str, doc: Document, tmp_path: Path) -> bytes:
    if fmt == "text":
        return doc.text.encode("utf-8")
    path = tmp_path / f"input.{fmt}"
    io.write([doc], path, fmt)
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["pubtator", "bioc-xml", "bioc-json", "pubmed-xml", "jsonl", "conll", "text"])
def test_file_endpoint_reads_every_input_format(client, fmt, tmp_path):
    doc = Document.from_passages("12345", [("title", "Insulin in mice."), ("abstract", "It lowers blood sugar.")])
    response = client.post(f"/annotate/file?format={fmt}&id=upload", content=_body_in(fmt, doc, tmp_path))
    assert response.status_code == 200, response.text
    (out,) = [Document.from_dict(d) for d in response.json()["documents"] if "Insulin" in d["text"]]
    assert [(e.text, e.type) for e in out.entities if e.source == "fake"] == [("Insulin", "chemical")]
    if fmt == "text":
        assert out.id == "upload" and out.text == doc.text
    elif fmt != "conll":  # CoNLL has no document ids; the others keep the PMID
        assert out.id == "12345"


@pytest.mark.parametrize(
    "output, media_type",
    [("jsonl", "application/x-ndjson"), ("pubtator", "text/plain"), ("bioc-xml", "application/xml"), ("bioc-json", "application/json")],
)
def test_output_formats_read_back_with_the_biotag_readers(output, media_type, tmp_path):
    # links without names: PubTator's ID column holds ids only
    lexicon = {word: (etype, Link(link.ontology, link.id)) for word, (etype, link) in FAKE_LEXICON.items()}
    with client_for(FakeAnnotator(lexicon=lexicon)) as c:
        response = c.post(f"/annotate/batch?output={output}", json={"texts": ["BRCA1 binds Insulin.", "Insulin again."]})
    assert response.status_code == 200 and response.headers["content-type"].startswith(media_type)
    path = tmp_path / "out"
    path.write_bytes(response.content)
    docs = list(io.read(path, output))
    assert [sorted(e.text for e in d.entities) for d in docs] == [["BRCA1", "Insulin"], ["Insulin"]]
    assert {(link.ontology, link.id) for d in docs for e in d.entities for link in e.links} == {("NCBIGene", "672"), ("MESH", "D007328")}


def test_a_result_the_output_format_cannot_hold_is_422(client):
    response = client.post("/annotate?output=bioc-xml", json={"text": "Insulin \u0001 control character", "id": "c1"})
    assert response.status_code == 422 and response.json()["error"] == "unwritable_output"
    assert response.json()["message"].startswith("the result cannot be written as bioc-xml: document c1")


def test_openapi_schema_documents_the_models_and_auth(client):
    schema = client.get("/openapi.json").json()
    assert {"/annotate", "/annotate/batch", "/annotate/file", "/health", "/ready"} <= set(schema["paths"])
    annotate = schema["paths"]["/annotate"]["post"]
    assert annotate["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/TextRequest")
    assert {"200", "413", "422", "504"} <= set(annotate["responses"])
    assert {"DocumentModel", "EntityModel", "LinkModel", "ErrorModel"} <= set(schema["components"]["schemas"])
    file_params = {p["name"]: p for p in schema["paths"]["/annotate/file"]["post"]["parameters"]}
    assert "pubmed-xml" in json.dumps(schema["components"]["schemas"]["InputFormat"]) and file_params["format"]["required"]
    assert "securitySchemes" not in schema.get("components", {})
    assert client.get("/docs").status_code == 404  # Swagger UI would need a CDN
    with client_for(api_keys=frozenset({"k"})) as secured:
        schemes = secured.get("/openapi.json").json()["components"]["securitySchemes"]
        assert {s["type"] for s in schemes.values()} == {"apiKey", "http"}


def test_web_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and "http" not in page.text.split("<body>")[0]  # nothing external
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]


# -- authentication ------------------------------------------------------------------------------
def test_api_keys_from_file_and_environment(tmp_path, monkeypatch):
    keys = tmp_path / "keys.txt"
    keys.write_text("# service keys\nfile-key\n\n")
    monkeypatch.setenv("BIOTAG_API_KEYS", "env-key-1, env-key-2")
    app = create_app(ServeSettings(api_keys_file=keys), annotator_factory=lambda s: FakeAnnotator())
    with TestClient(app) as c:
        missing = c.post("/annotate", json={"text": "BRCA1"})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert "X-API-Key" in missing.json()["message"]
        wrong = c.post("/annotate", json={"text": "BRCA1"}, headers={"X-API-Key": "file-key-but-longer"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "the API key is not valid"
        for headers in ({"X-API-Key": "file-key"}, {"Authorization": "Bearer env-key-2"}, {"X-API-Key": "env-key-1"}):
            assert c.post("/annotate", json={"text": "BRCA1"}, headers=headers).status_code == 200, headers
        for path in ("/health", "/ready", "/", "/openapi.json"):  # monitoring and the page stay open
            assert c.get(path).status_code == 200, path
        assert c.get("/ready").json()["auth"] is True


def test_auth_off_without_keys(client):
    assert client.post("/annotate", json={"text": "x"}, headers={"X-API-Key": "anything"}).status_code == 200
    assert client.get("/ready").json()["auth"] is False


def test_an_empty_key_file_is_refused(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# nothing yet\n")
    with pytest.raises(InputError, match="holds no key"):
        create_app(ServeSettings(api_keys_file=keys))
    result = CliRunner().invoke(cli_app, ["serve", "--api-keys-file", str(keys), "--port", "1"])
    assert result.exit_code == 2 and "holds no key" in result.output


# -- limits, timeouts, bad input ------------------------------------------------------------------
def test_body_over_the_limit_is_413_with_a_json_error():
    with client_for(max_body_bytes=1000) as c:
        response = c.post("/annotate", json={"text": "x" * 2000})
        assert response.status_code == 413
        assert response.json() == {"error": "too_large", "message": "the request body is larger than the limit of 1000 bytes"}
        # a streamed (chunked) body with no Content-Length is counted as it arrives
        chunks = (b"Insulin. " * 50 for _ in range(5))
        streamed = c.post("/annotate/file?format=text", content=chunks)
        assert streamed.status_code == 413 and streamed.json()["error"] == "too_large"
        assert c.post("/annotate/file?format=text", content=b"Insulin.").status_code == 200


def test_too_much_text_or_too_many_documents_is_413():
    with client_for(max_chars=20, max_documents=2) as c:
        assert c.post("/annotate", json={"text": "x" * 20}).status_code == 200
        chars = c.post("/annotate/batch", json={"texts": ["x" * 15, "y" * 15]})
        assert chars.status_code == 413 and "30 characters" in chars.json()["message"] and chars.json()["field"] == "text"
        docs = c.post("/annotate/file?format=pubtator", content=b"1|t|a\n1|a|b\n\n2|t|c\n2|a|d\n\n3|t|e\n3|a|f\n\n")
        assert docs.status_code == 413 and "3 documents; the limit is 2" in docs.json()["message"]


def test_slow_annotation_times_out_with_504_and_frees_the_loop():
    release = threading.Event()
    slow = FakeAnnotator(gate=release)
    try:
        with client_for(slow, timeout=0.3) as c:
            started = time.monotonic()
            response = c.post("/annotate", json={"text": "BRCA1"})
            assert response.status_code == 504 and response.json()["error"] == "timeout"
            assert "0.3 s" in response.json()["message"] and time.monotonic() - started < 3
            assert c.get("/health").status_code == 200
    finally:
        release.set()


def test_inference_runs_off_the_event_loop_with_bounded_concurrency():
    release = threading.Event()
    annotator = FakeAnnotator(gate=release)
    with client_for(annotator, concurrency=1) as c:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/annotate", json={"text": "BRCA1"}).status_code)) for _ in range(3)]
        try:
            for t in threads:
                t.start()
            assert annotator.entered.wait(5)
            started = time.monotonic()
            assert c.get("/health").status_code == 200  # answered while a request is being annotated
            assert time.monotonic() - started < 1
            assert annotator.active == 1
        finally:
            release.set()
            for t in threads:
                t.join(10)
    assert results == [200, 200, 200] and annotator.calls == 3 and annotator.most_active == 1


def test_bad_json_requests_name_the_field(client):
    missing = client.post("/annotate", json={"txt": "BRCA1"})
    assert missing.status_code == 422 and missing.json()["field"] in ("text", "txt")
    assert {d["field"] for d in missing.json()["details"]} == {"text", "txt"}
    wrong_type = client.post("/annotate/batch", json={"texts": ["ok", 3]})
    assert wrong_type.status_code == 422 and wrong_type.json()["field"] == "texts[1]"
    both = client.post("/annotate/batch", json={"texts": ["a"], "documents": []})
    assert both.status_code == 422 and "exactly one of 'texts' or 'documents'" in both.json()["message"]
    not_json = client.post("/annotate", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid_request"
    bad_output = client.post("/annotate?output=brat", json={"text": "x"})
    assert bad_output.status_code == 422 and bad_output.json()["field"] == "output"


def test_inconsistent_documents_are_422_naming_document_and_field(client):
    shape = client.post("/annotate/batch", json={"documents": [{"id": "ok", "text": "a"}, {"id": "d2", "text": "abc", "entities": [{"id": "T1"}]}]})
    assert shape.status_code == 422 and shape.json()["document"] == "d2" and shape.json()["field"].startswith("documents[1].entities[0]")
    offsets = {"id": "d3", "text": "abc", "entities": [{"id": "T1", "type": "x", "spans": [[1, 9]], "text": "bc"}]}
    response = client.post("/annotate/batch", json={"documents": [offsets]})
    body = response.json()
    assert response.status_code == 422 and body["error"] == "invalid_input"
    assert body["document"] == "d3" and body["field"] == "entities.spans" and "[1, 9)" in body["message"]


def test_malformed_file_is_400_naming_line_document_and_field(client):
    body = b"1|t|Insulin.\n1|a|Fine.\n\n2|t|Broken\n2|a|x\n2\t0\t99\tBroken\tThing\t-\n\n"
    response = client.post("/annotate/file?format=pubtator", content=body)
    error = response.json()
    assert response.status_code == 400 and error["error"] == "bad_format"
    assert (error["document"], error["field"], error["line"]) == ("2", "end", 6)
    assert error["message"].startswith("request body:6:") and "biotag-serve-" not in error["message"]
    not_utf8 = client.post("/annotate/file?format=text", content="Insulin é".encode("latin-1"))
    assert not_utf8.status_code == 400 and "request body" in not_utf8.json()["message"]
    unknown = client.post("/annotate/file?format=docx", content=b"x")
    assert unknown.status_code == 422 and unknown.json()["field"] == "format"


# -- settings -----------------------------------------------------------------------------------
def test_settings_travel_to_workers_without_keys(tmp_path):
    settings = ServeSettings(model=tmp_path, max_chars=10, timeout=2.5, api_keys=frozenset({"secret"}), api_keys_file=tmp_path / "k")
    text = settings.to_json()
    assert "secret" not in text
    back = ServeSettings.from_json(text)
    assert back == settings.replace(api_keys=frozenset())
    assert back.body_limit == 8 * 10 + 64 * 1024
    with pytest.raises(InputError, match="timeout"):
        ServeSettings(timeout=0)
