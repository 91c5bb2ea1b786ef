"""Move an encoder or a fine-tuned model to the GPU machine and back within its 64 MiB limit.

The `device` tool (a GPU machine some sessions are lent) takes at most 64 MiB of working
tree and returns at most 64 MiB of files, 16 MiB each. A MiniLM-L6 model is 91 MB in
float32, a third of it the 30,522-row word-embedding matrix, most of whose rows never occur
in a given corpus. A model is therefore moved as float16 with only the embedding rows of
the sub-words its corpora contain; the rows left out are never looked up in training or
evaluation on those corpora, so they are restored unchanged from the original here.

    # here: encoder + data for the corpora, into the ignored transport folder .device/
    python scripts/device_transport.py pack-encoder minilm-l6 .device/minilm-l6 -c bc2gm -c jnlpba
    # there: a float32 encoder directory again (left-out rows are zero)
    python scripts/device_transport.py unpack-encoder .device/minilm-l6 /tmp/encoders/minilm-l6
    # there: a trained model directory -> parts of at most 15 MiB plus a small tar
    python scripts/device_transport.py pack-model runs/single/bc2gm-l6/model $OUT/bc2gm -c bc2gm
    # here: the full float32 model directory, left-out rows from the original encoder
    python scripts/device_transport.py unpack-model FILES/bc2gm runs/single/bc2gm-l6/model --encoder minilm-l6

Float16 rounds each weight by at most 2**-11 relatively; the model is evaluated again here
after unpacking, and that number is the one reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
PART_BYTES = 15 * 2**20
EMBEDDINGS_SUFFIX = "word_embeddings.weight"


def corpus_rows(tokenizer_dir: Path, corpora: list[str], text_files: list[str] = ()) -> np.ndarray:
    """Sorted ids of every sub-word (and special token) in all splits of the corpora and in
    the JSONL text files (``text``, or ``title`` + ``abstract``, per line)."""
    from tokenizers import Tokenizer

    from biotag.corpora import SPLITS, read_corpus, resolve

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    # the special tokens, and every one-character piece (what unseen text falls back to)
    ids = {i for i in tokenizer.get_added_tokens_decoder()}
    ids |= {i for token, i in tokenizer.get_vocab().items() if len(token.removeprefix("##")) <= 1}
    for name in corpora:
        spec = resolve(name)
        for split in SPLITS:
            if spec.file is None and split not in spec.splits:
                continue
            texts = [doc.text for doc in read_corpus(name, split)]
            for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
                ids.update(encoding.ids)
    for path in text_files:
        with open(path, encoding="utf-8") as lines:
            records = [json.loads(line) for line in lines if line.strip()]
        texts = [r.get("text") or f"{r.get('title') or ''} {r.get('abstract') or ''}" for r in records]
        for encoding in tokenizer.encode_batch(texts, add_special_tokens=False):
            ids.update(encoding.ids)
    return np.array(sorted(ids), dtype=np.int64)


def _embedding_key(state: dict[str, torch.Tensor]) -> str:
    keys = [k for k in state if k.endswith(EMBEDDINGS_SUFFIX)]
    if len(keys) != 1:
        raise SystemExit(f"expected one *{EMBEDDINGS_SUFFIX} tensor, found {keys}")
    return keys[0]


def _shrink(state: dict[str, torch.Tensor], rows: np.ndarray) -> dict[str, torch.Tensor]:
    key = _embedding_key(state)
    small = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}
    small[key] = state[key][torch.from_numpy(rows)].to(torch.float16)
    small["__rows__"] = torch.from_numpy(rows)
    small["__vocab__"] = torch.tensor([state[key].shape[0]])
    return small


def _grow(small: dict[str, torch.Tensor], base: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    rows, vocab = small.pop("__rows__"), int(small.pop("__vocab__")[0])
    key = _embedding_key(small)
    state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in small.items()}
    if base is None:
        full = torch.zeros(vocab, small[key].shape[1])
    else:
        full = base[_embedding_key(base)].to(torch.float32).clone()
        if full.shape[0] != vocab:
            raise SystemExit(f"the original encoder has {full.shape[0]} embedding rows, the packed model {vocab}")
    full[rows] = small[key].to(torch.float32)
    state[key] = full
    return state


def _save_parts(state: dict[str, torch.Tensor], prefix: Path) -> list[Path]:
    from safetensors.torch import save

    blob = save({k: v.contiguous() for k, v in state.items()})
    parts = []
    for i in range(0, len(blob), PART_BYTES):
        part = prefix.with_name(f"{prefix.name}.part{i // PART_BYTES}")
        part.write_bytes(blob[i : i + PART_BYTES])
        parts.append(part)
    return parts


def _load_parts(prefix: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    parts = sorted(prefix.parent.glob(f"{prefix.name}.part*"), key=lambda p: int(p.name.rpartition("part")[2]))
    if not parts:
        raise SystemExit(f"no {prefix.name}.part* files in {prefix.parent}")
    return dict(load(b"".join(p.read_bytes() for p in parts)))


def _tar_small_files(directory: Path, target: Path) -> None:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file() and path.name != WEIGHTS:
                tar.add(path, arcname=str(path.relative_to(directory)))


def pack_encoder(args: argparse.Namespace) -> None:
    from biotag.paths import find_encoder

    source, target = find_encoder(args.encoder), Path(args.target)
    target.mkdir(parents=True, exist_ok=True)
    rows = corpus_rows(source, args.corpus, args.text)
    _save_parts(_shrink(load_file(str(source / WEIGHTS)), rows), target / "weights")
    _tar_small_files(source, target / "files.tar.gz")
    print(f"{source.name}: {len(rows)} embedding rows of the corpora kept; {sum(p.stat().st_size for p in target.iterdir()) / 2**20:.1f} MiB in {target}")


def unpack_encoder(args: argparse.Namespace) -> None:
    source, target = Path(args.source), Path(args.target)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source / "files.tar.gz") as tar:
        tar.extractall(target, filter="data")
    save_file(_grow(_load_parts(source / "weights"), None), str(target / WEIGHTS), metadata={"format": "pt"})


def pack_model(args: argparse.Namespace) -> None:
    model, prefix = Path(args.model), Path(args.prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    rows = corpus_rows(model, args.corpus, args.text)
    _save_parts(_shrink(load_file(str(model / WEIGHTS)), rows), prefix)
    _tar_small_files(model, prefix.with_name(prefix.name + ".files.tar.gz"))


def unpack_model(args: argparse.Namespace) -> None:
    from biotag.paths import find_encoder

    prefix, target = Path(args.prefix), Path(args.target)
    base = load_file(str(find_encoder(args.encoder) / WEIGHTS))
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(prefix.with_name(prefix.name + ".files.tar.gz")) as tar:
        tar.extractall(target, filter="data")
    small = _load_parts(prefix)
    n_rows = len(small["__rows__"])
    save_file(_grow(small, base), str(target / WEIGHTS), metadata={"format": "pt"})
    (target / "TRANSPORT.txt").write_text(
        "Trained on the GPU machine and moved here as float16 with the embedding rows of its corpora "
        f"({n_rows} rows); the other rows are {args.encoder}'s own "
        "(scripts/device_transport.py).\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack-encoder")
    p.add_argument("encoder"), p.add_argument("target"), p.add_argument("-c", "--corpus", action="append", required=True)
    p.add_argument("--text", action="append", default=[], help="JSONL text whose sub-words are kept too (unlabelled text)")
    p.set_defaults(run=pack_encoder)
    p = sub.add_parser("unpack-encoder")
    p.add_argument("source"), p.add_argument("target")
    p.set_defaults(run=unpack_encoder)
    p = sub.add_parser("pack-model")
    p.add_argument("model"), p.add_argument("prefix"), p.add_argument("-c", "--corpus", action="append", required=True)
    p.add_argument("--text", action="append", default=[], help="JSONL text whose sub-words are kept too (unlabelled text)")
    p.set_defaults(run=pack_model)
    p = sub.add_parser("unpack-model")
    p.add_argument("prefix"), p.add_argument("target"), p.add_argument("--encoder", required=True)
    p.set_defaults(run=unpack_model)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
