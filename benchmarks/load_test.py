"""Loopback load test of ``biotag serve``: N concurrent clients, bounded in requests and time.

Reports requests/s, documents/s, latency percentiles (p50/p95/p99) and errors as JSON,
and appends a markdown block (command, date, hardware, results) to the load-test
section of docs/benchmarks.md. Either point it at a running server:

    biotag serve --model MODEL --port 8000 &
    python benchmarks/load_test.py --url http://127.0.0.1:8000 --clients 8 --requests 400

or let it start and stop one itself (same options as ``biotag serve``):

    python benchmarks/load_test.py --start-server --model MODEL --workers 2 --clients 8 --requests 400

Only loopback addresses are accepted as targets: this is a benchmark of one machine,
never a way to send traffic elsewhere. The run stops after ``--requests`` requests or
``--duration`` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOC = REPO / "docs" / "benchmarks.md"
SECTION_TITLE = "## Load test: `biotag serve`"
SECTION_INTRO = """\
Loopback load test of the REST service (`POST /annotate`, one text per request unless
noted) by `benchmarks/load_test.py`: N concurrent clients (httpx.AsyncClient), bounded
in requests and duration. Latencies are end to end as a client sees them, queueing
included; the clients run on the same machine and share its CPU with the server.
Rerun with the command shown in each block (without `--model` it serves the bundled
model); new runs are appended here.
"""
# PubMed-like sentences (written for this benchmark) sent round-robin as request texts
TEXTS = [
    "BRCA1 and BRCA2 mutations increase the risk of breast and ovarian cancer in women.",
    "Aspirin reduced the incidence of colorectal adenoma in patients with Lynch syndrome.",
    "The TP53 R175H variant was detected in 12 of 40 tumour samples from HeLa cells.",
    "Insulin resistance in mice fed a high-fat diet was reversed by metformin treatment.",
    "Expression of IL-6 and TNF-alpha was elevated in the serum of patients with sepsis.",
    "Cisplatin-induced nephrotoxicity was attenuated by N-acetylcysteine in rats.",
    "EGFR exon 19 deletions predict response to gefitinib in non-small cell lung cancer.",
    "Mutations in the CFTR gene cause cystic fibrosis, an autosomal recessive disease.",
]
STARTUP_SECONDS = 180


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: Counter = field(default_factory=Counter)
    documents: int = 0
    characters: int = 0


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"refusing to load-test {host!r}: only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen | None, api_key: str | None) -> dict:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"biotag serve exited with code {process.returncode}")
        try:
            response = httpx.get(f"{url}/ready", timeout=5, headers=auth_headers(api_key))
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} was not ready after {STARTUP_SECONDS} s")


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


def start_server(args: argparse.Namespace) -> tuple[str, subprocess.Popen]:
    port = free_port()
    command = [sys.executable, "-m", "biotag.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(args.workers), "--concurrency", str(args.concurrency), "--timeout", str(args.request_timeout)]
    if args.model:
        command += ["--model", str(args.model)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return f"http://127.0.0.1:{port}", process


def request_payload(index: int, batch_size: int) -> tuple[str, dict, int, int]:
    """(path, JSON body, documents, characters) of request number ``index``."""
    if batch_size == 1:
        text = TEXTS[index % len(TEXTS)]
        return "/annotate", {"text": text}, 1, len(text)
    texts = [TEXTS[(index * batch_size + i) % len(TEXTS)] for i in range(batch_size)]
    return "/annotate/batch", {"texts": texts}, batch_size, sum(map(len, texts))


async def run_load(url: str, args: argparse.Namespace) -> tuple[Results, float]:
    results = Results()
    issued = 0
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.request_timeout + 5, headers=auth_headers(args.api_key)) as client:
        for i in range(args.warmup):  # first requests pay for lazy initialisation; not counted
            path, body, _, _ = request_payload(i, args.batch_size)
            await client.post(path, json=body)
        started = time.perf_counter()
        deadline = started + args.duration

        async def one_client() -> None:
            nonlocal issued
            while issued < args.requests and time.perf_counter() < deadline:
                index = issued
                issued += 1
                path, body, docs, chars = request_payload(index, args.batch_size)
                sent = time.perf_counter()
                try:
                    response = await client.post(path, json=body)
                except httpx.HTTPError as exc:
                    results.errors[type(exc).__name__] += 1
                    continue
                if response.status_code == 200:
                    results.latencies.append(time.perf_counter() - sent)
                    results.documents += docs
                    results.characters += chars
                else:
                    results.errors[f"HTTP {response.status_code}"] += 1

        await asyncio.gather(*(one_client() for _ in range(args.clients)))
        elapsed = time.perf_counter() - started
    return results, elapsed


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def hardware() -> dict:
    from biotag.bench.report import hardware as machine, load_average

    return {**machine(), "load_average_1m_before": load_average()}


def summarise(results: Results, elapsed: float, args: argparse.Namespace, ready: dict, hw: dict, command: str) -> dict:
    ms = sorted(x * 1000 for x in results.latencies)
    ok = len(ms)
    latency = {name: round(percentile(ms, q), 1) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))} if ms else {}
    if ms:
        latency.update(mean=round(statistics.fmean(ms), 1), max=round(ms[-1], 1))
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "model": ready.get("model") or "bundled default",
        "server": {"workers": args.workers, "concurrency": args.concurrency} if args.start_server else "external",
        "clients": args.clients,
        "texts_per_request": args.batch_size,
        "requests": ok + sum(results.errors.values()),
        "ok": ok,
        "errors": dict(results.errors),
        "duration_s": round(elapsed, 2),
        "requests_per_s": round(ok / elapsed, 2) if elapsed else 0.0,
        "documents_per_s": round(results.documents / elapsed, 2) if elapsed else 0.0,
        "characters_per_s": round(results.characters / elapsed) if elapsed else 0,
        "latency_ms": latency,
        "hardware": hw,
        "note": args.note,
    }


def markdown_block(report: dict) -> str:
    hw = report["hardware"]
    server = report["server"]
    server_text = f"{server['workers']} worker(s), concurrency {server['concurrency']}" if isinstance(server, dict) else "started separately"
    errors = ", ".join(f"{k}: {v}" for k, v in report["errors"].items()) or "0"
    lat = report["latency_ms"]
    lines = [
        f"### {report['date']} · model `{report['model']}` · {report['clients']} clients",
        "",
        f"- Command: `{report['command']}`",
        (
            f"- Hardware: {hw['cpu']}, {hw['cores']} cores, {hw['memory_gib']} GiB; 1-min load average before the run "
            f"{hw['load_average_1m_before']}; Python {hw['python']}, {hw['os']}"
        ),
        f"- Server: {server_text}; {report['texts_per_request']} text(s) per request",
    ]
    if report["note"]:
        lines.append(f"- Note: {report['note']}")
    lines += [
        "",
        "| requests | ok | errors | duration (s) | requests/s | documents/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        (
            f"| {report['requests']} | {report['ok']} | {errors} | {report['duration_s']} | {report['requests_per_s']} | "
            f"{report['documents_per_s']} | {lat.get('p50', '–')} | {lat.get('p95', '–')} | {lat.get('p99', '–')} | {lat.get('max', '–')} |"
        ),
        "",
    ]
    return "\n".join(lines)


def append_to_doc(path: Path, block: str) -> None:
    """Add ``block`` at the end of the load-test section (created when missing),
    leaving the other sections of the file as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if SECTION_TITLE not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION_TITLE}\n\n{SECTION_INTRO}\n"
    start = text.index(SECTION_TITLE) + len(SECTION_TITLE)
    next_section = text.find("\n## ", start)
    end = len(text) if next_section < 0 else next_section + 1
    section = text[:end].rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(section + ("\n" + text[end:] if end < len(text) else ""), encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="a running server on this machine, e.g. http://127.0.0.1:8000")
    target.add_argument("--start-server", action="store_true", help="start `biotag serve` on a free loopback port, stop it after")
    parser.add_argument("--model", type=Path, help="model directory for --start-server (default: the bundled model)")
    parser.add_argument("--workers", type=int, default=1, help="--start-server: worker processes")
    parser.add_argument("--concurrency", type=int, default=1, help="--start-server: requests annotated at once per worker")
    parser.add_argument("--threads", type=int, help="--start-server: CPU threads per worker")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=200, help="stop after this many requests")
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    parser.add_argument("--batch-size", type=int, default=1, help="texts per request (>1: POST /annotate/batch)")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted requests first")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="seconds per request")
    parser.add_argument("--api-key", default=os.environ.get("BIOTAG_LOAD_TEST_API_KEY"), help="sent as X-API-Key")
    parser.add_argument("--json", type=Path, help="also write the JSON report here")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="markdown file to append to")
    parser.add_argument("--no-doc", action="store_true", help="print only; do not touch the markdown file")
    parser.add_argument("--note", default="", help="a remark recorded with the run (e.g. other load on the machine)")
    args = parser.parse_args(argv)
    for name in ("clients", "requests", "batch_size", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.duration <= 0 or args.duration > 3600:
        parser.error("--duration must be in (0, 3600] seconds")
    return args


def reproducible_arguments(argv: list[str]) -> list[str]:
    """The arguments that shape a run: without where its report goes, the note (shown
    on its own) and the API key."""
    dropped = {"--note", "--json", "--doc", "--api-key"}
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in dropped:
            skip = True
        elif arg != "--no-doc" and arg.split("=", 1)[0] not in dropped:
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    command = "python benchmarks/load_test.py " + shlex.join(reproducible_arguments(argv if argv is not None else sys.argv[1:]))
    hw = hardware()  # load average before the server starts
    process = None
    if args.start_server:
        url, process = start_server(args)
    else:
        url = args.url.rstrip("/")
        check_loopback(url)
    try:
        ready = wait_ready(url, process, args.api_key)
        results, elapsed = asyncio.run(run_load(url, args))
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
    report = summarise(results, elapsed, args, ready, hw, command)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_doc:
        append_to_doc(args.doc, markdown_block(report))
        print(f"appended to {args.doc}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
