"""``biotag batch --address``: the same job on a multi-node Ray cluster.

Two Ray nodes are started on this machine with ``ray.cluster_utils.Cluster`` (a head and a
worker node, one CPU each, so two one-CPU workers must land on different nodes) and the
job connects to the head's address, as it would to a real cluster. Kept apart from
tests/test_batch.py, whose module-wide local Ray session cannot coexist with a cluster."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from biotag import io
from biotag.document import Document
from biotag.pipeline import register_step

ray = pytest.importorskip("ray", reason="biotag batch needs Ray (pip install ray)")
cluster_utils = pytest.importorskip("ray.cluster_utils", reason="ray.cluster_utils is not available")

from biotag.batch import BatchOptions, run_batch  # noqa: E402

TESTS = Path(__file__).resolve().parent


@register_step("test-wait-for-peers")
def wait_for_peers(*, folder: str, peers: int):
    """Hold a worker's first batch until ``peers`` worker processes have checked in, so the
    job cannot finish on the first worker alone (no timing assumptions)."""

    def step(docs):
        Path(folder, str(os.getpid())).touch()
        deadline = time.monotonic() + 120
        while len(list(Path(folder).iterdir())) < peers and time.monotonic() < deadline:
            time.sleep(0.05)
        return docs

    return step


@pytest.fixture
def two_node_cluster(monkeypatch):
    if ray.is_initialized():
        ray.shutdown()
    # the nodes' workers inherit this environment: they can import this module's step
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p))
    cluster = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 96 * 2**20},
    )
    cluster.add_node(num_cpus=1, object_store_memory=96 * 2**20)
    cluster.wait_for_nodes()
    try:
        yield cluster
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def test_job_on_a_cluster_address_spreads_workers_over_nodes_and_loses_nothing(tmp_path: Path, two_node_cluster):
    docs = [Document(id=f"doc-{i}", text=f"Case {i}. BRCA1 was mutated. Tamoxifen was given.") for i in range(24)]
    io.write(docs, tmp_path / "in.jsonl")
    out, peers = tmp_path / "out", tmp_path / "peers"
    peers.mkdir()
    pipeline = tmp_path / "pipeline.json"
    pipeline.write_text(json.dumps({"steps": ["sentences", {"name": "test-wait-for-peers", "folder": str(peers), "peers": 2}]}))
    summary = run_batch(BatchOptions(
        [str(tmp_path / "in.jsonl")], str(out), pipeline=str(pipeline), workers=2, threads=1, imports=[Path(__file__).stem],
        batch_size=3, shard_size=10, progress=False, address=two_node_cluster.address,
    ))
    assert (summary.documents, summary.failures, summary.crashes) == (24, 0, 0)
    assert len(summary.nodes) == 2, f"workers ran on {summary.nodes}"
    written = sorted(d.id for shard in sorted(out.glob("part-*.jsonl")) for d in io.read(shard, "jsonl"))
    assert written == sorted(d.id for d in docs)
    assert all(d.sentences for shard in out.glob("part-*.jsonl") for d in io.read(shard, "jsonl"))
