"""The ``biotag`` command line: a thin shell over the Python API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

from biotag.commands import DEVICE_HELP
from biotag.errors import BiotagError, InputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Fast biomedical text mining on CPU: NER, entity linking, relations, de-identification.",
)
log = logging.getLogger("biotag")

OUTPUT_FORMATS = ["jsonl", "pubtator", "bioc-xml", "bioc-json", "brat", "conll", "pubmed-xml", "text"]


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _error_reporter(counter: list[int]):
    def report(error: BiotagError) -> None:
        counter[0] += 1
        typer.secho(f"skipped: {error}", fg=typer.colors.YELLOW, err=True)

    return report


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _input_documents(text: Optional[str], input_path: Optional[Path], input_format: Optional[str], skip_bad: bool, counter):
    from biotag import io
    from biotag.document import Document

    if input_path is not None:
        return io.read(input_path, input_format, skip_bad=skip_bad, on_error=_error_reporter(counter))
    if text is None or text == "-":
        data = sys.stdin.read()
        return iter([Document(id="stdin", text=data)])
    return iter([Document(id="text", text=text)])


@app.command()
def annotate(
    text: Optional[str] = typer.Argument(None, help="Text to annotate; '-' or nothing reads standard input."),
    input_path: Optional[Path] = typer.Option(None, "--input", "-i", help="File or folder to annotate instead of TEXT."),
    input_format: Optional[str] = typer.Option(None, "--input-format", help="Format of --input (guessed from the name if omitted)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file or folder (default: standard output)."),
    output_format: str = typer.Option("jsonl", "--format", "-f", help=f"One of: {', '.join(OUTPUT_FORMATS)}."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model directory (default: the bundled model)."),
    backend: str = typer.Option("auto", help="auto, onnx or torch."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for inference."),
    batch_size: int = typer.Option(32, help="Sentences per forward pass."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report and skip malformed input documents instead of stopping."),
    steps: Optional[str] = typer.Option(None, "--steps", help="Comma-separated pipeline steps, e.g. ner,abbreviations (default: the default pipeline)."),
    pipeline: Optional[Path] = typer.Option(None, "--pipeline", help="Pipeline config JSON (see biotag.pipeline.config)."),
    relation_model: Optional[Path] = typer.Option(None, "--relation-model", help="Relation model directory for a relations step (--steps ner,relations)."),
) -> None:
    """Tag entities in text, a file or a folder."""
    from biotag import io
    from biotag.api import load

    counter = [0]
    try:
        nlp = load(
            model, threads=threads, backend=backend, batch_size=batch_size, steps=steps, config=pipeline, relation_model=relation_model
        )
        docs = nlp.pipe(_input_documents(text, input_path, input_format, skip_bad, counter))
        if output is None:
            if output_format in ("brat", "text"):
                _fail(BiotagError(f"--format {output_format} writes a folder: give --output"))
            n = io.write(docs, sys.stdout, output_format)
        else:
            n = io.write(docs, output, output_format)
    except BiotagError as error:
        _fail(error)
    if output is not None or counter[0]:
        typer.secho(f"{n} documents annotated" + (f", {counter[0]} skipped" if counter[0] else ""), err=True)


@app.command()
def convert(
    source: Path = typer.Argument(..., help="Input file or folder."),
    target: Path = typer.Argument(..., help="Output file or folder."),
    from_format: Optional[str] = typer.Option(None, "--from", help="Input format (guessed if omitted)."),
    to_format: Optional[str] = typer.Option(None, "--to", help="Output format (guessed from TARGET if omitted)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Report and skip malformed documents."),
) -> None:
    """Convert documents between any two supported formats."""
    from biotag import io

    counter = [0]
    try:
        docs = io.read(source, from_format, skip_bad=skip_bad, on_error=_error_reporter(counter))
        n = io.write(docs, target, to_format)
    except BiotagError as error:
        _fail(error)
    typer.secho(f"{n} documents written to {target}" + (f", {counter[0]} skipped" if counter[0] else ""), err=True)


@app.command()
def train(
    corpus: Optional[List[str]] = typer.Option(None, "--corpus", "-c", help="Corpus name (see `biotag corpora`) or path; repeat for several (default: the config's)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (the model goes to OUTPUT/model; default: the config's output_dir)."),
    encoder: Optional[str] = typer.Option(None, help="Encoder directory or short name under $BIOTAG_ENCODERS (default: the config's, else minilm-l6)."),
    config: Optional[Path] = typer.Option(None, help="TrainConfig JSON; command-line options override it."),
    scheme: Optional[str] = typer.Option(None, help="bio or multilabel."),
    unify_types: Optional[bool] = typer.Option(None, "--unify-types/--corpus-types", help="Map corpus labels to biotag's unified types."),
    epochs: Optional[int] = typer.Option(None),
    lr: Optional[float] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many optimizer steps."),
    seed: Optional[int] = typer.Option(None),
    threads: Optional[int] = typer.Option(None),
    device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
    decoder: Optional[str] = typer.Option(None, help="crf (a CRF layer; the default), viterbi (BIO-constrained) or greedy."),
    dictionary_features: Optional[bool] = typer.Option(
        None, "--dictionary-features/--no-dictionary-features", help="Per-word matches of the shared dictionaries (default: on; docs/features.md)."
    ),
    dictionaries: Optional[Path] = typer.Option(None, "--dictionaries", help="Use this folder saved by DictionaryMatcher.save instead of the shared dictionaries."),
    shape_features: Optional[bool] = typer.Option(None, "--shape-features/--no-shape-features", help="Word shape flags from the cased text (default: on)."),
    feature_dropout: Optional[float] = typer.Option(None, help="Chance of hiding a dictionary match in training (default 0.1)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
) -> None:
    """Fine-tune a token-classification model on one or several corpora (dictionary + shape
    features and a CRF by default: the recipe that won the ablation of docs/results.md)."""
    from biotag.training import TrainConfig, train as run_training

    overrides = {
        "corpora": list(corpus) if corpus else None,
        "output_dir": str(output) if output is not None else None,
        "encoder": encoder,
        "scheme": scheme,
        "unify_types": unify_types,
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "max_steps": max_steps,
        "seed": seed,
        "threads": threads,
        "device": device,
        "decoder": decoder,
        "dictionary_features": str(dictionaries) if dictionaries is not None else dictionary_features,
        "shape_features": shape_features,
        "feature_dropout": feature_dropout,
    }
    try:
        if dictionaries is not None and dictionary_features is False:
            raise InputError("--dictionaries names the dictionary to use; it cannot go with --no-dictionary-features", field="dictionaries")
        if config is None:
            missing = [name for name, value in (("--corpus", corpus), ("--output", output)) if not value]
            if missing:
                raise InputError(f"{' and '.join(missing)} needed without --config", field=missing[0].lstrip("-"))
        base = TrainConfig.from_json(config) if config else TrainConfig(corpora=list(corpus), output_dir=str(output))
        cfg = base.replace(**{k: v for k, v in overrides.items() if v is not None})
        path = run_training(cfg, resume=resume)
    except BiotagError as error:
        _fail(error)
    typer.echo(str(path))


@app.command()
def evaluate(
    model: Optional[List[Path]] = typer.Option(
        None, "--model", "-m", help="Model directory (default: the bundled model); repeat it to evaluate an ensemble (mean of the models' word distributions)."
    ),
    corpus: str = typer.Option(..., "--corpus", "-c", help="Corpus name or path."),
    split: str = typer.Option("test", help="train, devel or test."),
    backend: str = typer.Option("auto", help="auto, onnx or torch."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report as JSON here."),
    decoder: Optional[str] = typer.Option(None, help="Decode with greedy, viterbi or crf instead of the model's own decoder (an ensemble: viterbi or greedy)."),
) -> None:
    """Strict entity-level P/R/F1 of a model (or an ensemble of models) on a corpus split."""
    from biotag.api import load_predictor
    from biotag.corpora import read_corpus
    from biotag.evaluation import corpus_scoring, evaluate_tagger
    from biotag.ner import NerTagger

    try:
        predictor = load_predictor(model, backend=backend, decoder=decoder)
        types, type_map = corpus_scoring(corpus, predictor.schema.types)
        report = evaluate_tagger(NerTagger(predictor), read_corpus(corpus, split), types=types, type_map=type_map)
    except BiotagError as error:
        _fail(error)
    typer.echo(report.format_table())
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


@app.command()
def corpora() -> None:
    """List the benchmark corpora known by name."""
    from biotag.corpora import list_corpora

    for spec in list_corpora():
        typer.echo(f"{spec.name:18s} {spec.format:9s} {', '.join(spec.types)}")


@app.command()
def serve(
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Model directory (default: the bundled model)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes; each loads its own copy of the model."),
    api_keys_file: Optional[Path] = typer.Option(
        None, "--api-keys-file", help="File of accepted API keys, one per line; keys in $BIOTAG_API_KEYS (comma-separated) count too. No key: no authentication."
    ),
    max_chars: int = typer.Option(200_000, min=1, help="Most characters of text in one request (413 above)."),
    max_documents: int = typer.Option(256, min=1, help="Most documents in one request (413 above)."),
    timeout: float = typer.Option(60.0, min=0.001, help="Seconds one request may take (504 after)."),
    concurrency: int = typer.Option(1, min=1, help="Requests annotated at once per worker (CPU-bound: keep it low)."),
    backend: str = typer.Option("auto", help="auto, onnx or torch."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for inference, per worker."),
) -> None:
    """Run the REST service and web page (http://HOST:PORT/, OpenAPI schema at /openapi.json)."""
    from biotag.serve.server import run
    from biotag.serve.settings import ServeSettings

    try:
        settings = ServeSettings(
            model=model, backend=backend, threads=threads, max_chars=max_chars, max_documents=max_documents,
            timeout=timeout, concurrency=concurrency, api_keys_file=api_keys_file,
        )
        run(settings, host=host, port=port, workers=workers)
    except BiotagError as error:
        _fail(error)


@app.command("build-index")
def build_index(
    ontology: List[str] = typer.Option(["all"], "--ontology", help="Dictionary to index (repeatable), or 'all'; see biotag.linking.sources."),
    out: Optional[Path] = typer.Option(None, "--out", help="Index folder (default: $BIOTAG_INDEXES or ~/.cache/biotag/indexes)."),
    source: Optional[Path] = typer.Option(None, "--source", help="Folder holding the dictionaries (default: <data root>/dictionaries)."),
) -> None:
    """Build the entity-linking indexes of the known dictionaries."""
    from biotag.linking.sources import build_sources

    try:
        for info in build_sources(ontology, source, out):
            typer.echo(f"{info.name:12s} {info.concepts:9d} concepts {info.strings:9d} names {info.build_seconds:7.1f}s")
    except BiotagError as error:
        _fail(error)


@app.command("add-ontology")
def add_ontology(
    path: Path = typer.Argument(..., help="TSV (id<TAB>name<TAB>synonym|synonym...) or OBO file."),
    name: str = typer.Option(..., "--name", help="Name of the new index."),
    types: str = typer.Option(..., "--types", help="Comma-separated entity types it serves, e.g. disease,chemical."),
    prefix: Optional[str] = typer.Option(None, "--prefix", help="CURIE prefix for bare IDs in a TSV."),
    out: Optional[Path] = typer.Option(None, "--out", help="Index folder (default: $BIOTAG_INDEXES or ~/.cache/biotag/indexes)."),
    priority: int = typer.Option(10, help="Rank among the ontologies of a type when scores tie (lower first)."),
) -> None:
    """Add a custom ontology for entity linking, in one command."""
    from biotag.linking.sources import add_ontology as add

    try:
        info = add(path, name, types.split(","), out_dir=out, prefix=prefix, priority=priority)
    except BiotagError as error:
        _fail(error)
    typer.echo(f"{info.name}: {info.concepts} concepts, {info.strings} names, types {', '.join(info.types)}")


@app.command("evaluate-linking")
def evaluate_linking(
    corpus: str = typer.Option(..., "--corpus", "-c", help="ncbi-disease, bc5cdr-disease, bc5cdr-chem, s800, bioid, gnormplus, nlm-gene or biored."),
    split: str = typer.Option("test", help="train, devel or test."),
    indexes: Optional[Path] = typer.Option(None, "--indexes", help="Index folder (default: $BIOTAG_INDEXES or ~/.cache/biotag/indexes)."),
    ontology: Optional[List[str]] = typer.Option(None, "--ontology", help="Index to link with (repeatable; default: the benchmark's)."),
    train_synonyms: bool = typer.Option(False, "--train-synonyms", help="Add the earlier splits' gold mentions as synonyms (BioSyn/SapBERT protocol)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report (with misses) as JSON here."),
    reranker: Optional[Path] = typer.Option(None, "--reranker", help="Re-ranker directory (biotag train-reranker)."),
    reranker_weight: Optional[float] = typer.Option(None, "--reranker-weight", min=0.0, max=1.0, help="Share of the embedding score (default: the re-ranker's tuned weight)."),
    reranker_pool: Optional[int] = typer.Option(None, "--reranker-pool", min=1, help="Candidates re-scored (default: the re-ranker's tuned pool)."),
    reranker_names: Optional[int] = typer.Option(None, "--reranker-names", min=1, help="Names compared per candidate (default: the re-ranker's tuned number)."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="PyTorch threads of the re-ranker (1 on a busy machine: waiting threads cost more than they give)."),
    end_to_end: bool = typer.Option(False, "--end-to-end", help="Run NER + linking on the raw documents and report P/R/F1 of (span, ID) and (document, ID) pairs."),
    model: Optional[Path] = typer.Option(None, "--model", help="NER model for --end-to-end (default: the bundled one)."),
) -> None:
    """Linking accuracy@1/@5 and speed on gold mentions (or end to end, with NER)."""
    from biotag.linking.evaluate import evaluate_linking as run_evaluation

    options = {}
    try:
        if reranker is not None:
            from biotag.linking.rerank import load_reranker

            options["reranker"] = load_reranker(reranker, weight=reranker_weight, pool=reranker_pool, names=reranker_names, threads=threads)
        if end_to_end:
            from biotag.linking.end_to_end import evaluate_end_to_end

            report = evaluate_end_to_end(corpus, split, index_dir=indexes, ontologies=ontology, model=model, train_synonyms=train_synonyms, **options)
        else:
            report = run_evaluation(corpus, split, index_dir=indexes, ontologies=ontology, train_synonyms=train_synonyms, **options)
    except BiotagError as error:
        _fail(error)
    typer.echo(report.format_table())
    if output:
        output.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def _register_command_modules() -> None:
    from biotag.commands import register_all

    register_all(app)


_register_command_modules()

if __name__ == "__main__":  # pragma: no cover
    app()
