"""``biotag pretrain``: domain-adaptive masked-LM pretraining of an encoder."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import List, Optional

import typer

from biotag.commands import DEVICE_HELP
from biotag.errors import BiotagError


def register(app: typer.Typer) -> None:
    @app.command()
    def pretrain(
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory (the encoder goes to OUTPUT/encoder)."),
        encoder: Optional[str] = typer.Option(None, help="Encoder directory or short name (minilm-l3, minilm-l6, mpnet-base)."),
        config: Optional[Path] = typer.Option(None, help="PretrainConfig JSON; command-line options override it."),
        source: Optional[List[str]] = typer.Option(None, "--source", help="Shared text: abstracts, more-text, ner-corpora (repeat; default all three)."),
        text: Optional[List[Path]] = typer.Option(None, "--text", help="Your own text: .txt (a document per line) or .jsonl (text or title+abstract); repeat."),
        no_shared: bool = typer.Option(False, "--no-shared", help="Read only --text files, no shared text."),
        max_steps: Optional[int] = typer.Option(None, help="Full-model training steps (after the head warm-up)."),
        max_minutes: Optional[float] = typer.Option(None, help="Stop, save and keep the checkpoint after this much training time; --resume continues."),
        head_warmup_steps: Optional[int] = typer.Option(None, help="Steps that fit only the new MLM head first (0: none)."),
        batch_size: Optional[int] = typer.Option(None),
        max_length: Optional[int] = typer.Option(None, help="Sub-words per training sequence."),
        lr: Optional[float] = typer.Option(None),
        extend_vocab: Optional[int] = typer.Option(None, help="Add up to this many frequent biomedical words to the vocabulary."),
        min_word_count: Optional[int] = typer.Option(None, help="Occurrences a word needs to be added."),
        eval_sequences: Optional[int] = typer.Option(None, help="Held-back sequences for perplexity."),
        checkpoint_every: Optional[int] = typer.Option(None),
        seed: Optional[int] = typer.Option(None),
        threads: Optional[int] = typer.Option(None),
        device: Optional[str] = typer.Option(None, help=DEVICE_HELP),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint."),
    ) -> None:
        """Continue masked-LM training of an encoder on biomedical text (whole-word masking)."""
        from biotag.cli import _fail
        from biotag.pretrain import PretrainConfig, pretrain as run

        options = {
            "output_dir": None if output is None else str(output), "encoder": encoder, "max_steps": max_steps,
            "max_minutes": max_minutes, "head_warmup_steps": head_warmup_steps, "batch_size": batch_size,
            "max_length": max_length, "lr": lr, "extend_vocab": extend_vocab, "min_word_count": min_word_count,
            "eval_sequences": eval_sequences, "checkpoint_every": checkpoint_every, "seed": seed, "threads": threads, "device": device,
            "sources": [] if no_shared else (list(source) if source else None),
            "text_files": [str(p) for p in text] if text else None,
        }
        options = {k: v for k, v in options.items() if v is not None}
        logging.getLogger("biotag").setLevel(logging.INFO)  # long runs show progress (the CLI's handler is set up already)
        try:
            if config is not None:
                cfg = PretrainConfig.from_json(config)
                cfg = PretrainConfig.from_dict({**cfg.to_dict(), **options})
            else:
                cfg = PretrainConfig.from_dict(options)
            encoder_dir = run(cfg, resume=resume)
        except BiotagError as error:
            _fail(error)
        summary = json.loads((encoder_dir.parent / "summary.json").read_text(encoding="utf-8"))
        ppl = ", ".join(f"{k} {v}" for k, v in summary["perplexity"].items())
        typer.echo(f"held-back perplexity: {ppl}; {summary['stop_reason']} after {summary['steps']} steps; encoder: {encoder_dir}")
