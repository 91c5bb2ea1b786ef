"""The web page in a real headless browser (Playwright driving Debian's chromium)
against real uvicorn servers: ``biotag serve`` with the tiny model in a subprocess, and
an in-process server whose fake annotator returns nested, crossing, discontinuous and
linked entities. Skips with the reason when playwright or chromium is missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("BIOTAG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed")
if not CHROMIUM.is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set BIOTAG_CHROMIUM)", allow_module_level=True)


from biotag.document import Document, Link  # noqa: E402
from biotag.serve import ServeSettings, create_app  # noqa: E402

STARTUP_SECONDS = 90  # a cold torch import on a busy 2-core machine is slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"biotag serve exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} was not ready after {STARTUP_SECONDS} s")


@pytest.fixture(scope="module")
def model_server(toy_trained) -> Iterator[str]:
    """``biotag serve`` with the tiny model, as a user starts it."""
    model = toy_trained[0]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "BIOTAG_API_KEYS"}
    process = subprocess.Popen(
        [sys.executable, "-m", "biotag.cli", "serve", "--model", str(model), "--port", str(port), "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(20)


TEXT = "Human BRCA1 gene mutations cause breast cancer in women."


def add_overlapping_entities(doc: Document) -> None:
    """Fixed entities over TEXT (wherever it is in ``doc``): a mention nested in another,
    one crossing another, a discontinuous one, and links with names."""
    base = doc.text.index(TEXT)

    def at(word: str) -> int:
        return doc.text.index(word, base)

    doc.add_entity(at("BRCA1"), at(" mutations"), "gene", id="T1", score=0.91, links=[Link("NCBIGene", "672", "BRCA1")])
    doc.add_entity(at("BRCA1"), at(" gene"), "gene", id="T2", score=0.42)
    doc.add_entity(at("breast"), at(" in women"), "disease", id="T3", score=0.88, links=[Link("MESH", "D001943", "Breast Neoplasms")])
    doc.add_entity(at("cause"), at(" cancer"), "chemical", id="T4", score=0.3)  # T3 crosses its end
    doc.add_entity([(at("Human"), at(" BRCA1")), (at("women"), at("."))], type="species", id="T5", score=0.7)


def annotate_overlaps(docs: list[Document]) -> list[Document]:
    for doc in docs:
        if TEXT in doc.text:
            add_overlapping_entities(doc)
    return docs


@pytest.fixture(scope="module")
def fake_server() -> Iterator[str]:
    """An in-process uvicorn server with the overlapping-entities annotator."""
    settings = ServeSettings(api_keys_env=None)
    app = create_app(settings, annotator_factory=lambda s: annotate_overlaps)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def submit(page, url: str, text: str, input_format: str = "plain") -> None:
    page.goto(url + "/")
    page.select_option("#input-format", input_format)
    page.fill("#input-text", text)
    page.get_by_role("button", name="Annotate").click()
    page.wait_for_selector('#results[aria-busy="false"]', timeout=20_000)


def test_page_highlights_the_tiny_models_entities(page, model_server, tmp_path):
    submit(page, model_server, "the Insulin of Kinase was the cell .")
    assert page.inner_text("#status") == "1 entity found in 1 document."
    marks = page.locator("mark.ent")
    assert marks.all_inner_texts() == ["Insulin"]
    assert marks.first.get_attribute("data-type") == "Thing"
    assert page.locator("#legend li").all_inner_texts() == ["Thing (1)"]
    assert page.locator("table.entities tbody tr").first.inner_text().split("\t")[:3] == ["Insulin", "Thing", "4–11"]

    marks.first.hover()
    tip = page.locator("#tooltip")
    assert tip.is_visible() and tip.inner_text().startswith("Thing\n“Insulin”\nscore 0.9")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download JSON").click()
    saved = tmp_path / "result.json"
    download.value.save_as(saved)
    result = Document.from_dict(json.loads(saved.read_text()))
    assert download.value.suggested_filename == "biotag-annotations.json"
    assert [(e.text, e.type) for e in result.entities] == [("Insulin", "Thing")]


def test_nested_crossing_and_discontinuous_entities(page, fake_server):
    submit(page, fake_server, TEXT)
    assert page.inner_text("#status") == "5 entities found in 1 document."
    # nested: T2 "BRCA1" inside T1 "BRCA1 gene", each one element with its whole text
    outer = page.locator('mark[data-entity="T1"]')
    assert outer.inner_text() == "BRCA1 gene" and outer.locator('mark[data-entity="T2"]').inner_text() == "BRCA1"
    # the enclosing mark's underline sits below the inner one's
    layer = outer.evaluate("m => getComputedStyle(m).paddingBottom")
    assert layer == "5px" and page.locator('mark[data-entity="T2"]').evaluate("m => getComputedStyle(m).paddingBottom") == "0px"
    # crossing: T3 "breast cancer" starts inside T4 "cause breast" and ends after it, so
    # it is cut where T4 ends; both pieces are marked as fragments
    assert page.locator('mark[data-entity="T4"]').inner_text() == "cause breast"
    crossing = page.locator('mark[data-entity="T3"]')
    assert crossing.all_inner_texts() == ["breast", " cancer"]
    assert all("fragment" in c for c in crossing.evaluate_all("ms => ms.map(m => m.className)"))
    # discontinuous: two fragments of one entity
    assert page.locator('mark[data-entity="T5"]').all_inner_texts() == ["Human", "women"]
    # the page text is the document text, untouched
    assert page.inner_text(".doc-text") == TEXT
    # one colour per type, the same in the text and the legend
    colour = "m => getComputedStyle(m).borderBottomColor"
    gene, disease = (page.locator(f'mark[data-entity="{i}"]').first.evaluate(colour) for i in ("T1", "T3"))
    assert gene != disease and page.locator('mark[data-entity="T2"]').evaluate(colour) == gene
    assert page.locator('#legend li[data-type="gene"] .swatch').evaluate(colour) == gene
    assert page.locator("#legend li").all_inner_texts() == ["chemical (1)", "disease (1)", "gene (2)", "species (1)"]
    # hover (and keyboard focus) show type, score and the linked concept's name
    crossing.last.hover()
    assert page.inner_text("#tooltip").split("\n") == ["disease", "“breast cancer”", "score 0.880", "MESH:D001943 (Breast Neoplasms)"]
    page.locator('mark[data-entity="T2"]').focus()
    assert page.inner_text("#tooltip").split("\n")[:3] == ["gene", "“BRCA1”", "score 0.420"]
    assert page.locator('mark[data-entity="T2"]').get_attribute("aria-describedby") == "tooltip"


def test_pubtator_input_and_error_messages(page, fake_server):
    submit(page, fake_server, f"777|t|{TEXT}\n777|a|No entity here.\n", input_format="pubtator")
    assert page.locator("article.document h3").all_inner_texts() == ["Document 777"]
    assert page.locator('mark[data-entity="T1"]').inner_text() == "BRCA1 gene"

    submit(page, fake_server, "777|t|Title\n777|a|x\n777\t0\t99\tTitle\tgene\t-\n", input_format="pubtator")
    status = page.locator("#status")
    assert "error" in status.get_attribute("class")
    assert status.inner_text().startswith("Error 400: request body:3: document 777: field 'end'")
