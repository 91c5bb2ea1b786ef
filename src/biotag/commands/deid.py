"""``biotag deidentify``, ``biotag evaluate-deid`` and ``biotag deid-corpora``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from biotag.errors import BiotagError, InputError

MODEL_ENV = "BIOTAG_DEID_MODEL"


def _tagger(model: Optional[Path], rules_only: bool, no_rules: bool, threshold: Optional[float], threads: Optional[int], backend: str = "auto"):
    from biotag.deid.tagger import PhiTagger

    if rules_only and no_rules:
        raise InputError("--rules-only and --no-rules leave nothing to find PHI with")
    model = model or (Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else None)
    if rules_only:
        model = None
    elif model is None:
        raise InputError(
            f"no PHI model: pass --model DIR (a model trained on PHI, see README) or set ${MODEL_ENV}; "
            "--rules-only finds structured PHI (dates, phone numbers, IDs...) without one",
            field="model",
        )
    return PhiTagger.load(model, use_rules=not no_rules, threshold=threshold, threads=threads, backend=backend)


def register(app: typer.Typer) -> None:
    @app.command("deidentify")
    def deidentify(
        text: Optional[str] = typer.Argument(None, help="Note text to de-identify; '-' or nothing reads standard input."),
        input_path: Optional[Path] = typer.Option(None, "--input", "-i", help="A .txt file, a folder of .txt files, or a JSONL file of objects with a text field."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output file (or folder, for a folder of text files); default: standard output."),
        output_format: Optional[str] = typer.Option(None, "--format", "-f", help="text or jsonl (with the offset map); default: jsonl for JSONL input, else text."),
        mode: str = typer.Option("tag", "--mode", help="tag: replace PHI by [TYPE]; surrogate: by consistent made-up values, dates shifted per key."),
        model: Optional[Path] = typer.Option(None, "--model", "-m", help=f"PHI model directory (default: ${MODEL_ENV})."),
        rules_only: bool = typer.Option(False, "--rules-only", help="Use the rule recognisers alone (structured PHI only: no names)."),
        no_rules: bool = typer.Option(False, "--no-rules", help="Use the model alone."),
        threshold: Optional[float] = typer.Option(None, help="PHI probability from which a word is PHI (default: the model's deid.json, else 0.5)."),
        text_field: str = typer.Option("text", help="JSONL: the field holding the note."),
        id_field: str = typer.Option("id", help="JSONL: the field holding the note id."),
        key_field: Optional[str] = typer.Option(None, help="JSONL: notes with the same value (e.g. patient) share one date offset and surrogate table; default: each note its own."),
        seed: Optional[str] = typer.Option(None, help="Secret seed of date offsets and surrogates (default: random, so not reproducible)."),
        threads: Optional[int] = typer.Option(None, help="CPU threads for the model."),
    ) -> None:
        """Replace protected health information (PHI) in clinical notes by tags or surrogates."""
        from biotag.cli import _fail
        from biotag.deid.notes import deidentify_notes, read_notes
        from biotag.deid.redact import MODES

        try:
            if mode not in MODES:
                raise InputError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}", field="mode")
            if input_path is None and (text is None or text == "-"):
                text = sys.stdin.read()
            if input_path is not None and not input_path.exists():
                raise InputError("no such file or folder", path=str(input_path))
            is_jsonl = input_path is not None and input_path.suffix.lower() in (".jsonl", ".ndjson")
            fmt = output_format or ("jsonl" if is_jsonl else "text")
            if fmt not in ("text", "jsonl"):
                raise InputError(f"--format must be text or jsonl, not {fmt!r}", field="format")
            tagger = _tagger(model, rules_only, no_rules, threshold, threads)
            notes = read_notes(input_path, None if input_path is not None else text, text_field=text_field, id_field=id_field, key_field=key_field)
            results = deidentify_notes(notes, tagger, mode=mode, seed=seed)
            to_folder = fmt == "text" and input_path is not None and input_path.is_dir()
            if to_folder and output is None:
                raise InputError("a folder of notes needs --output (a folder) or --format jsonl", field="output")
            count = _write(results, output, fmt, mode, to_folder)
        except BiotagError as error:
            _fail(error)
        if output is not None:
            typer.secho(f"{count} notes de-identified", err=True)

    @app.command("evaluate-deid")
    def evaluate_deid(
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="PHI model directory (omit with --rules-only)."),
        split: str = typer.Option("dev", help="physionet-deid split: dev (the shared one, for reporting) or devel (train patients held out, for tuning)."),
        rules_only: bool = typer.Option(False, "--rules-only", help="Score the rules alone."),
        threshold: Optional[float] = typer.Option(None, help="PHI probability threshold (default: the model's deid.json, else 0.5)."),
        tune_threshold: bool = typer.Option(False, "--tune-threshold", help="Sweep thresholds on this split, keep the highest reaching --target-recall and write it to MODEL/deid.json."),
        target_recall: float = typer.Option(0.98, help="Any-overlap span recall the tuned threshold must reach."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report as JSON here."),
        threads: Optional[int] = typer.Option(None, help="CPU threads for the model."),
    ) -> None:
        """Span recall/precision (exact, any-overlap) and token recall on physionet-deid: rules, model, combined."""
        from biotag.cli import _fail
        from biotag.deid.data import physionet_split
        from biotag.deid.evaluate import choose_threshold, compare_systems, sweep_thresholds
        from biotag.deid.tagger import write_settings

        try:
            if tune_threshold and (model is None or rules_only):
                raise InputError("--tune-threshold needs a --model", field="model")
            if tune_threshold and split != "devel":
                typer.secho("warning: tuning on a split other than devel makes its numbers optimistic", fg=typer.colors.YELLOW, err=True)
            docs = physionet_split(split)
            tagger = _tagger(model, rules_only, False, threshold, threads)
            scores = tagger.model.score(docs) if tagger.model is not None else None
            report: dict = {"split": split, "notes": len(docs), "model": None if model is None or rules_only else str(model)}
            if tune_threshold:
                rows = sweep_thresholds(docs, tagger.model, tagger.rules, scores)
                best = choose_threshold(rows, target_recall)
                tagger.threshold = best["threshold"]
                report["sweep"] = rows
                write_settings(model, {
                    "threshold": best["threshold"], "rules": list(tagger.rules.kinds), "tuned_on": f"physionet-deid {split}",
                    "target_recall": target_recall, "at_threshold": {k: v for k, v in best.items() if k != "threshold"},
                })
                typer.echo(f"threshold {best['threshold']} (recall {best['recall_overlap']:.4f}, precision {best['precision_overlap']:.4f}) written to {model}/deid.json")
            report["threshold"] = tagger.threshold if tagger.model is not None else None
            report["systems"] = compare_systems(docs, tagger.model, tagger.rules, tagger.threshold, scores=scores)
        except BiotagError as error:
            _fail(error)
        _print_systems(report["systems"])
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")

    @app.command("deid-corpora")
    def deid_corpora(
        output: Path = typer.Argument(..., help="Folder to write physionet-deid/ and presidio-synthetic/ into."),
        typed_presidio: bool = typer.Option(False, "--typed-presidio", help="Keep presidio's HIPAA-style types instead of one PHI type."),
    ) -> None:
        """Write the PHI training corpora as biotag JSONL folders for `biotag train` (physionet split by patient)."""
        from biotag.cli import _fail
        from biotag.deid.data import write_training_corpora

        try:
            sizes = write_training_corpora(output, typed_presidio=typed_presidio)
        except BiotagError as error:
            _fail(error)
        for name, size in sizes.items():
            typer.echo(f"{name:34s} {size['documents']:5d} notes {size['entities']:5d} PHI spans")


def _write(results, output: Optional[Path], fmt: str, mode: str, to_folder: bool) -> int:
    from biotag.deid.notes import note_record

    count = 0
    if to_folder:
        assert output is not None
        output.mkdir(parents=True, exist_ok=True)
        for note, result in results:
            (output / f"{note.id}.txt").write_text(result.text, encoding="utf-8")
            count += 1
        return count
    stream = open(output, "w", encoding="utf-8") if output is not None else sys.stdout
    try:
        for note, result in results:
            if fmt == "jsonl":
                stream.write(json.dumps(note_record(note, result, mode), ensure_ascii=False) + "\n")
            else:
                stream.write(("\n\n" if count else "") + result.text)
            count += 1
        if fmt == "text" and count and output is None:
            stream.write("\n")
    finally:
        if output is not None:
            stream.close()
    return count


def _print_systems(systems: dict[str, dict]) -> None:
    typer.echo(f"{'system':9s} {'R exact':>8s} {'P exact':>8s} {'R overlap':>9s} {'P overlap':>9s} {'tok R':>7s} {'spans':>6s}")
    for name, r in systems.items():
        typer.echo(
            f"{name:9s} {r['recall_exact']:8.4f} {r['precision_exact']:8.4f} {r['recall_overlap']:9.4f} "
            f"{r['precision_overlap']:9.4f} {r['token_recall']:7.4f} {r['predicted_spans']:6d}"
        )
