"""``biotag batch``: outputs, resume, and the no-lost-documents invariant under faults.

The fault-injection steps below are test-only: they are registered in the pipeline
registry when this module is imported, and the Ray workers import it too
(``BatchOptions.imports``, with this folder on the workers' PYTHONPATH). One Ray
session (2 CPUs) serves the whole module.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from biotag import io
from biotag.document import Document
from biotag.errors import InputError
from biotag.pipeline import each_document, register_step

ray = pytest.importorskip("ray", reason="biotag batch needs Ray (pip install ray)")

from biotag.batch import BatchOptions, Manifest, RangeSet, run_batch  # noqa: E402

TESTS = Path(__file__).resolve().parent
MODULE = Path(__file__).stem  # what the workers import to get the steps below

_LEAKED: list[bytes] = []


# -- test-only fault injection ---------------------------------------------------------
@register_step("test-crash-on")
def crash_on(*, marker: str, once: str | None = None):
    """SIGKILL the worker process on a document whose text holds ``marker``: every time,
    or only the first time when ``once`` names a flag file that does not exist yet."""

    def check(doc: Document) -> None:
        if marker in doc.text:
            if once is not None:
                if os.path.exists(once):
                    return
                Path(once).write_text("killed once\n")
            os.kill(os.getpid(), signal.SIGKILL)

    return each_document(check)


@register_step("test-fail-on")
def fail_on(*, marker: str):
    """An ordinary Python error on a document holding ``marker``."""

    def check(doc: Document) -> None:
        if marker in doc.text:
            raise ValueError(f"cannot digest {marker}")

    return each_document(check)


@register_step("test-leak")
def leak(*, mb_per_batch: int):
    """Keep ``mb_per_batch`` MiB alive after every batch (touched, so it counts in RSS)."""

    def grow(docs):
        _LEAKED.append(b"\x01" * (mb_per_batch * 2**20))
        return docs

    return grow


@register_step("test-hog-on")
def hog_on(*, marker: str, mb: int):
    """Allocate ``mb`` MiB at once on a document holding ``marker`` and hold it a moment."""

    def check(doc: Document) -> None:
        if marker in doc.text:
            block = b"\x01" * (mb * 2**20)
            time.sleep(1.0)
            del block

    return each_document(check)


# -- helpers -----------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def ray_session():
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", object_store_memory=128 * 2**20,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


def write_docs(path: Path, n: int, marked: dict[int, str] | None = None) -> list[str]:
    marked = marked or {}
    docs = [
        Document(id=f"doc-{i}", text=f"Patient {i} carries a BRCA1 mutation and has breast cancer. {marked.get(i, '')}".strip())
        for i in range(n)
    ]
    io.write(docs, path)
    return [d.id for d in docs]


def config(tmp_path: Path, *steps: dict) -> Path:
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps({"steps": [{"name": "sentences"}, *steps]}))
    return path


def options(inputs, outdir, **kw) -> BatchOptions:
    kw.setdefault("progress", False)
    kw.setdefault("imports", [MODULE])
    kw.setdefault("batch_size", 4)
    kw.setdefault("shard_size", 5)
    return BatchOptions([str(i) for i in inputs], str(outdir), **kw)


def outcome(outdir: Path) -> tuple[Counter, list[dict]]:
    """Ids in the committed shards (counted) and the failure records."""
    manifest = Manifest.load(outdir)
    files = {s["file"] for s in manifest.shards if s["file"]}
    on_disk = {p.name for p in outdir.glob("part-*")}
    assert on_disk == files, f"part files not in the manifest: {on_disk - files}"
    ids: Counter = Counter()
    for name in sorted(files):
        ids.update(doc.id for doc in io.read(outdir / name, "jsonl"))
    failures = [json.loads(line) for line in (outdir / "failures.jsonl").read_text().splitlines()]
    assert manifest.failures == len(failures)
    assert manifest.documents == sum(ids.values())
    return ids, failures


def assert_exactly_once(expected: list[str], outdir: Path) -> tuple[Counter, list[dict]]:
    ids, failures = outcome(outdir)
    everything = ids + Counter(f["id"] for f in failures)
    assert everything == Counter(expected), "every input document exactly once in output or failures"
    return ids, failures


# -- tests -----------------------------------------------------------------------------------
def test_range_set_merges_and_answers_membership():
    r = RangeSet([[5, 8], [0, 2]])
    for x in (2, 3, 4, 9, 1, 8):
        r.add(x)
    assert r.ranges() == [[0, 10]] and len(r) == 10
    r.update(RangeSet([[20, 25], [12, 14]]))
    assert r.ranges() == [[0, 10], [12, 14], [20, 25]]
    assert 13 in r and 11 not in r and 25 not in r and 24 in r


def test_bundled_model_jsonl_then_rerun_skips_everything(tmp_path):
    expected = write_docs(tmp_path / "in.jsonl", 11)
    out = tmp_path / "out"
    summary = run_batch(options([tmp_path / "in.jsonl"], out, steps="sentences,ner", imports=[]))
    assert (summary.documents, summary.failures, summary.crashes) == (11, 0, 0)
    ids, failures = assert_exactly_once(expected, out)
    assert not failures
    docs = [d for p in sorted(out.glob("part-*.jsonl")) for d in io.read(p)]
    assert any(e.type == "disease" and e.text == "breast cancer" for d in docs for e in d.entities)
    sizes = [s["documents"] for s in Manifest.load(out).shards]
    assert len(sizes) >= 2 and all(n >= 5 for n in sizes[:-1])  # a shard closes once it holds 5

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = run_batch(options([tmp_path / "in.jsonl"], out, steps="sentences,ner", imports=[]))
    assert (again.documents, again.skipped, again.total_documents) == (0, 11, 11)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_parquet_output_has_entities_and_positions(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    expected = write_docs(tmp_path / "in.jsonl", 6)
    out = tmp_path / "out"
    run_batch(options([tmp_path / "in.jsonl"], out, steps="sentences,ner", imports=[], output_format="parquet", shard_size=100))
    table = pq.read_table(out / "part-00000.parquet").to_pylist()
    assert [r["id"] for r in table] == expected and [r["position"] for r in table] == list(range(6))
    assert all(r["input"] == str(tmp_path / "in.jsonl") for r in table)
    row = table[0]
    cancer = [e for e in row["entities"] if e["text"] == "breast cancer"]
    assert cancer and row["text"][cancer[0]["start"] : cancer[0]["end"]] == "breast cancer"
    assert Document.from_json(row["document"]).id == "doc-0"


def test_pubtator_and_text_folder_inputs_to_pubtator_output(tmp_path):
    docs = [Document.from_passages(str(100 + i), [("title", f"Title {i}."), ("abstract", f"Abstract number {i}.")]) for i in range(5)]
    io.write(docs, tmp_path / "a.pubtator")
    texts = tmp_path / "texts"
    texts.mkdir()
    for i in range(3):
        (texts / f"note{i}.txt").write_text(f"Note {i} about aspirin.\n")
    out = tmp_path / "out"
    summary = run_batch(options([tmp_path / "a.pubtator", str(texts / "*.txt")], out, steps="sentences", output_format="pubtator"))
    assert summary.documents == 8
    written = [d for p in sorted(out.glob("part-*.pubtator")) for d in io.read(p, "pubtator", skip_bad=False)]
    assert sorted(d.id for d in written) == sorted([str(100 + i) for i in range(5)] + ["note0", "note1", "note2"])
    assert {d.id: d.text for d in written}["102"] == "Title 2. Abstract number 2."


def test_resume_after_interruption_produces_each_document_once(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 23, marked={4: "FAIL", 17: "FAIL"})
    out = tmp_path / "out"
    pipeline = config(tmp_path, {"name": "test-fail-on", "marker": "FAIL"})

    class Interrupted(Exception):
        pass

    def stop(manifest):
        raise Interrupted  # the driver dies right after its first shard is committed

    with pytest.raises(Interrupted):
        run_batch(options([source], out, pipeline=pipeline), on_commit=stop)
    first = Manifest.load(out)
    assert len(first.shards) == 1
    done_first = sum(s["documents"] + s["failures"] for s in first.shards)
    # what a crash leaves behind: a shard renamed but never listed, a temporary shard, and
    # failure lines written after the last commit
    (out / "part-00009.jsonl").write_text('{"id": "doc-0", "text": "stale"}\n')
    (out / "part-00001.jsonl.tmp").write_text("partial")
    with open(out / "failures.jsonl", "a") as fh:
        fh.write('{"id": "doc-17", "kind": "step-error"}\n')

    summary = run_batch(options([source], out, pipeline=pipeline))
    assert summary.skipped == done_first and summary.documents + summary.failures == 23 - done_first
    assert sorted(summary.removed_uncommitted) == ["part-00001.jsonl.tmp", "part-00009.jsonl"]
    ids, failures = assert_exactly_once(expected, out)
    assert sorted(f["id"] for f in failures) == ["doc-17", "doc-4"]
    assert all(f["kind"] == "step-error" and "ValueError: cannot digest FAIL" in f["error"] for f in failures)
    assert {f["position"] for f in failures} == {4, 17} and failures[0]["document"]["text"].endswith("FAIL")


def test_worker_killed_mid_job_loses_nothing(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 20, marked={9: "KILL"})
    flag = tmp_path / "killed"
    pipeline = config(tmp_path, {"name": "test-crash-on", "marker": "KILL", "once": str(flag)})
    out = tmp_path / "out"
    summary = run_batch(options([source], out, pipeline=pipeline))
    assert flag.exists(), "the worker was really killed"
    assert summary.crashes == 1 and summary.retried_batches >= 1
    ids, failures = assert_exactly_once(expected, out)
    assert not failures and ids["doc-9"] == 1


def test_poison_document_is_quarantined_and_the_rest_written(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 14, marked={6: "POISON"})
    pipeline = config(tmp_path, {"name": "test-crash-on", "marker": "POISON"})
    out = tmp_path / "out"
    summary = run_batch(options([source], out, pipeline=pipeline))
    ids, failures = assert_exactly_once(expected, out)
    assert len(ids) == 13 and [f["id"] for f in failures] == ["doc-6"]
    record = failures[0]
    assert record["kind"] == "worker-crash" and record["crashes"] >= 2 and summary.crashes >= record["crashes"]
    assert record["input"] == str(source) and record["position"] == 6 and "died" in record["error"]
    assert record["document"]["text"].endswith("POISON")


def test_memory_watchdog_recycles_workers_before_the_limit(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 24)
    pipeline = config(tmp_path, {"name": "test-leak", "mb_per_batch": 40})
    out = tmp_path / "out"
    limit = 450.0
    summary = run_batch(options([source], out, pipeline=pipeline, batch_size=2, workers=1, max_worker_rss_mb=limit))
    # one worker gets all 12 batches, 480 MiB of leaks: without recycling it would pass the limit
    assert summary.recycled >= 1 and summary.crashes == 0
    assert summary.max_worker_rss_mb < limit
    ids, failures = assert_exactly_once(expected, out)
    assert not failures


def test_document_over_the_memory_limit_is_quarantined(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 6, marked={2: "HUGE"})
    pipeline = config(tmp_path, {"name": "test-hog-on", "marker": "HUGE", "mb": 600})
    out = tmp_path / "out"
    summary = run_batch(options([source], out, pipeline=pipeline, batch_size=2, max_worker_rss_mb=450.0))
    ids, failures = assert_exactly_once(expected, out)
    assert [f["id"] for f in failures] == ["doc-2"] and failures[0]["kind"] == "worker-crash"
    assert summary.crashes >= 2 and len(ids) == 5


def test_bad_input_lines_reported_with_skip_bad(tmp_path):
    source = tmp_path / "in.jsonl"
    expected = write_docs(source, 8)
    lines = source.read_text().splitlines()
    lines.insert(3, '{"id": "broken", "text": ')  # line 4: not JSON
    lines.insert(6, '{"id": "bad-offsets", "text": "abc", "entities": [{"id": "T1", "type": "x", "spans": [[0, 9]], "text": "abcdefghi"}]}')
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"

    with pytest.raises(InputError, match=r"in\.jsonl:4"):
        run_batch(options([source], out, steps="sentences", imports=[]))

    summary = run_batch(options([source], tmp_path / "out2", steps="sentences", imports=[], skip_bad=True))
    assert (summary.documents, summary.failures) == (8, 2)
    ids, failures = outcome(tmp_path / "out2")
    assert sorted(ids) == sorted(expected) and max(ids.values()) == 1
    assert [(f["kind"], f["line"], f["position"]) for f in failures] == [("bad-input", 4, 3), ("bad-input", 7, 6)]
    assert failures[1]["id"] == "bad-offsets" and "document" not in failures[0]


def test_changed_settings_are_refused_on_resume(tmp_path):
    write_docs(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out"
    run_batch(options([tmp_path / "in.jsonl"], out, steps="sentences", imports=[]))
    with pytest.raises(InputError, match="output_format"):
        run_batch(options([tmp_path / "in.jsonl"], out, steps="sentences", imports=[], output_format="parquet"))


def test_cli_batch_folder_and_resume(tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    folder = tmp_path / "inputs"
    folder.mkdir()
    expected = write_docs(folder / "a.jsonl", 4) + write_docs(folder / "b.jsonl", 3)
    out = tmp_path / "out"
    args = ["batch", str(folder), "-o", str(out), "--steps", "sentences", "--workers", "2", "--batch-size", "2", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "7 documents annotated, 0 to failures.jsonl" in result.output
    ids, _ = outcome(out)
    assert sorted(ids.elements()) == sorted(expected)  # doc ids repeat across the two files: both kept
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "0 documents annotated" in again.output and "7 already done" in again.output

    bad = CliRunner().invoke(app, ["batch", str(tmp_path / "missing*.jsonl"), "-o", str(out), "--no-progress"])
    assert bad.exit_code == 2 and "no file matches" in bad.output
