"""ONNX export and the ONNX Runtime engine, on tiny random models (nothing is trained)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import biotag
from biotag.document import Document
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from biotag.ner import NerTagger
from biotag.paths import encoders_root
from biotag.runtime.engine import FastTokenizer, OnnxTokenClassifier
from biotag.runtime.export import export_onnx
from biotag.text.subwords import SubwordEncoder

from helpers import make_tiny_encoder, make_tiny_mpnet

SCHEMES = {
    "bio": LabelSchema(("Gene", "Disease"), "bio"),
    "multilabel": LabelSchema(("Gene", "Disease", "Chemical"), "multilabel"),
}
MAX_LENGTH = 16  # a few words per window: the long sentences below need several windows
LONG = ("the Insulin of Kinase was the cell in a mouse with blood cancer and the Alpha Beta protein " * 4).split()
WORD_LISTS = [
    ["The", "BRCA", "gene", "is", "mutated", "in", "the", "Human", "."],
    ["Aspirin", "."],
    [],
    LONG,
    ["β-catenin", "", "\u200b", "naïve", "TP53", "(", "IL-2", ")", "x" * 40],
]
TEXTS = [
    "the Insulin of Kinase was the cell . BRCA1 mutations cause breast cancer in the Mouse.",
    "β-catenin and naïve T cells; IL-2 (10 mg/kg) was given.",
    "",
    " ".join(LONG),
    "Aspirin.",
]


def _max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert [x.shape for x in a] == [y.shape for y in b]
    return max((float(np.abs(x - y).max()) for x, y in zip(a, b) if x.size), default=0.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime")


@pytest.fixture(scope="module")
def torch_models(root) -> dict[str, Path]:
    """A saved random-head model per scheme."""
    encoder = make_tiny_encoder(root / "encoder")
    dirs = {}
    for name, schema in SCHEMES.items():
        model = TokenClassifier.from_encoder(encoder, schema, max_length=MAX_LENGTH)
        dirs[name] = model.save_pretrained(root / f"torch-{name}")
    return dirs


@pytest.fixture(scope="module")
def fp32_exports(root, torch_models) -> dict[str, Path]:
    return {name: export_onnx(d, root / f"onnx-{name}", quantize="none") for name, d in torch_models.items()}


@pytest.fixture(scope="module")
def int8_export(root, torch_models) -> Path:
    return export_onnx(torch_models["multilabel"], root / "int8", quantize="int8")


def _onnx_ops(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


# -- equivalence with PyTorch ---------------------------------------------------------
@pytest.mark.parametrize("scheme", SCHEMES)
def test_fp32_scores_match_pytorch(scheme, torch_models, fp32_exports):
    model = TokenClassifier.from_pretrained(torch_models[scheme])
    engine = OnnxTokenClassifier.from_pretrained(fp32_exports[scheme], threads=1)
    assert len(engine.encoder.encode([LONG]).windows) >= 3  # the long sentence is really windowed
    assert engine.max_length == MAX_LENGTH and engine.schema == SCHEMES[scheme]
    expected = model.predict_words(WORD_LISTS, batch_size=2)
    scores = engine.predict_words(WORD_LISTS, batch_size=2)
    assert [s.shape for s in scores] == [(len(w), SCHEMES[scheme].num_outputs) for w in WORD_LISTS]
    assert all(s.dtype == np.float32 for s in scores)
    assert _max_diff(scores, expected) < 1e-4
    spans, expected_spans = engine.decode(scores[0]), model.decode(expected[0])
    assert [s for s, _ in spans] == [s for s, _ in expected_spans]
    assert [c for _, c in spans] == pytest.approx([c for _, c in expected_spans], abs=1e-4)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_fp32_entities_identical_through_the_tagger(scheme, torch_models, fp32_exports):
    def tag(predictor) -> list[list[tuple]]:
        docs = [Document(id=str(i), text=text) for i, text in enumerate(TEXTS)]
        tagged = list(NerTagger(predictor, batch_size=3)(docs))
        return [[(tuple(e.spans), e.type, e.text, e.score) for e in doc.entities] for doc in tagged]

    expected = tag(TokenClassifier.from_pretrained(torch_models[scheme]))
    found = tag(OnnxTokenClassifier.from_pretrained(fp32_exports[scheme], threads=1))
    assert sum(map(len, expected)) > 5  # the random head does tag things, so the comparison bites
    assert [[e[:3] for e in doc] for doc in found] == [[e[:3] for e in doc] for doc in expected]
    for doc_found, doc_expected in zip(found, expected):
        assert [e[3] for e in doc_found] == pytest.approx([e[3] for e in doc_expected], abs=2e-4)


def test_mpnet_exports_and_matches_pytorch(tmp_path):
    """MPNet (relative attention bias, no token types) exports too; the BERT fusions that
    do not apply are left out, and results still match."""
    make_tiny_mpnet(tmp_path / "enc")
    model = TokenClassifier.from_encoder(tmp_path / "enc", SCHEMES["bio"], max_length=MAX_LENGTH)
    model.save_pretrained(tmp_path / "torch")
    out = export_onnx(tmp_path / "torch", tmp_path / "onnx", quantize="none")
    engine = OnnxTokenClassifier.from_pretrained(out, threads=1)
    assert _max_diff(engine.predict_words(WORD_LISTS), model.predict_words(WORD_LISTS)) < 1e-4


# -- quantization ------------------------------------------------------------------------
def test_int8_export_is_smaller_and_close(torch_models, fp32_exports, int8_export):
    fp32_file = fp32_exports["multilabel"] / "model.onnx"
    int8_file = int8_export / "model.int8.onnx"
    assert [p.name for p in int8_export.glob("*.onnx")] == ["model.int8.onnx"]
    assert int8_file.stat().st_size < 0.6 * fp32_file.stat().st_size
    assert "DynamicQuantizeLinear" in _onnx_ops(int8_file)  # really quantized, not just smaller
    expected = TokenClassifier.from_pretrained(torch_models["multilabel"]).predict_words(WORD_LISTS)
    scores = OnnxTokenClassifier.from_pretrained(int8_export, threads=1).predict_words(WORD_LISTS)
    diff = _max_diff(scores, expected)
    scale = max(float(np.abs(s).max()) for s in expected if s.size)
    print(f"int8 max |logit difference| {diff:.4f} (logits up to {scale:.2f})")
    assert 0 < diff < 0.1 * scale
    meta = json.loads((int8_export / "biotag.json").read_text())["onnx"]
    assert meta["quantize"] == "int8" and meta["max_abs_diff_vs_pytorch"] > 0


def test_int8_with_float_embeddings_quantizes_only_the_matrix_products(root, torch_models, int8_export):
    out = export_onnx(torch_models["multilabel"], root / "int8-fe", quantize="int8-fp32-embeddings")
    ops, int8_ops = _onnx_ops(out / "model.int8.onnx"), _onnx_ops(int8_export / "model.int8.onnx")
    assert "DynamicQuantizeLinear" in ops or "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops
    assert "QEmbedLayerNormalization" in int8_ops and "QEmbedLayerNormalization" not in ops and "EmbedLayerNormalization" in ops
    assert int8_export.joinpath("model.int8.onnx").stat().st_size < out.joinpath("model.int8.onnx").stat().st_size
    expected = TokenClassifier.from_pretrained(torch_models["multilabel"]).predict_words(WORD_LISTS)
    scores = OnnxTokenClassifier.from_pretrained(out, threads=1).predict_words(WORD_LISTS)
    assert 0 < _max_diff(scores, expected) < 0.1 * max(float(np.abs(s).max()) for s in expected if s.size)
    assert json.loads((out / "biotag.json").read_text())["onnx"]["quantize"] == "int8-fp32-embeddings"


def _int8_weights(path: Path) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]


def test_full_range_export_uses_8_bit_weights_and_is_closer(root, torch_models, int8_export):
    full = export_onnx(torch_models["multilabel"], root / "int8-full", quantize="int8", full_range=True)
    reduced_weights, full_weights = _int8_weights(int8_export / "model.int8.onnx"), _int8_weights(full / "model.int8.onnx")
    assert reduced_weights and len(full_weights) == len(reduced_weights)
    assert max(int(np.abs(w.astype(np.int16)).max()) for w in reduced_weights) <= 64  # reduce_range: 7 bits
    assert min(int(np.abs(w.astype(np.int16)).max()) for w in full_weights) > 100  # each channel's peak reaches 127
    expected = TokenClassifier.from_pretrained(torch_models["multilabel"]).predict_words(WORD_LISTS)

    def mean_error(directory: Path) -> float:
        scores = OnnxTokenClassifier.from_pretrained(directory, threads=1).predict_words(WORD_LISTS)
        return float(np.mean(np.concatenate([np.abs(s - e).ravel() for s, e in zip(scores, expected)])))

    print(f"mean |logit error| 7-bit {mean_error(int8_export):.5f}, 8-bit {mean_error(full):.5f}")
    assert mean_error(full) < mean_error(int8_export)
    records = [json.loads((d / "biotag.json").read_text())["onnx"] for d in (int8_export, full)]
    assert [r["weight_bits"] for r in records] == [7, 8]
    assert "8-bit weights (needs VNNI/AMX on x86)" in (full / "README.md").read_text()


def test_full_range_models_warn_on_cpus_without_vnni(tmp_path, caplog):
    from biotag.runtime.engine import cpu_has_vnni, warn_if_saturating

    full, reduced = {"quantize": "int8", "weight_bits": 8}, {"quantize": "int8", "weight_bits": 7}
    with caplog.at_level("WARNING", logger="biotag.runtime.engine"):
        assert warn_if_saturating(Path("m.onnx"), full, has_vnni=False)
        assert not warn_if_saturating(Path("m.onnx"), full, has_vnni=True)
        assert not warn_if_saturating(Path("m.onnx"), reduced, has_vnni=False)
        assert not warn_if_saturating(Path("m.onnx"), {"quantize": "none", "weight_bits": None}, has_vnni=False)
    assert len(caplog.records) == 1 and "--full-range" in caplog.records[0].getMessage()
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    new.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n")
    import platform

    if platform.machine().lower() in ("x86_64", "amd64"):
        assert cpu_has_vnni(str(old)) is False and cpu_has_vnni(str(new)) is True
        assert cpu_has_vnni(str(tmp_path / "missing")) is None


def test_static_quantization_calibrates(root, torch_models):
    out = export_onnx(torch_models["bio"], root / "static", quantize="static", calibration_words=WORD_LISTS * 2)
    model_file = out / "model.static.onnx"
    assert {"QuantizeLinear", "DequantizeLinear"} <= _onnx_ops(model_file)  # calibrated activation ranges
    expected = TokenClassifier.from_pretrained(torch_models["bio"]).predict_words(WORD_LISTS)
    scores = OnnxTokenClassifier.from_pretrained(out, threads=1).predict_words(WORD_LISTS)
    scale = max(float(np.abs(s).max()) for s in expected if s.size)
    assert _max_diff(scores, expected) < 0.2 * scale
    assert json.loads((out / "biotag.json").read_text())["onnx"]["quantize"] == "static"


def test_static_quantization_needs_calibration_words(root, torch_models):
    for words in (None, [[], []]):
        with pytest.raises(InputError) as info:
            export_onnx(torch_models["bio"], root / "never", quantize="static", calibration_words=words)
        assert info.value.field == "calibration_words"
    assert not (root / "never").exists()


# -- the exported directory ------------------------------------------------------------
def test_exported_directory_is_self_contained(torch_models, int8_export):
    names = {p.name for p in int8_export.iterdir()}
    assert {"biotag.json", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md", "model.int8.onnx"} <= names
    assert not any(name.endswith((".safetensors", ".bin")) for name in names)
    meta = json.loads((int8_export / "biotag.json").read_text())
    source = json.loads((torch_models["multilabel"] / "biotag.json").read_text())
    assert {k: v for k, v in meta.items() if k != "onnx"} == source
    assert {"file": "model.int8.onnx", "quantize": "int8", "opset": 17, "optimized": True}.items() <= meta["onnx"].items()
    assert meta["onnx"]["fusions"]["Attention"] == 2  # both tiny BERT layers fused
    card = (int8_export / "README.md").read_text()
    assert card.startswith((torch_models["multilabel"] / "README.md").read_text().rstrip("\n"))
    assert "## ONNX export" in card and "model.int8.onnx" in card and "7-bit weights" in card


def test_api_load_picks_the_onnx_engine(int8_export):
    nlp = biotag.load(int8_export, threads=1)
    assert isinstance(nlp.tagger.predictor, OnnxTokenClassifier)
    assert nlp.types == SCHEMES["multilabel"].types
    doc = nlp(TEXTS[0])
    doc.validate()


def test_torch_backend_on_an_onnx_only_directory_is_a_clear_error(int8_export):
    with pytest.raises(InputError) as info:
        biotag.load(int8_export, backend="torch")
    assert info.value.path == str(int8_export)


def test_engine_loads_without_torch_or_transformers(int8_export):
    code = (
        "import sys\n"
        "from biotag.runtime.engine import OnnxTokenClassifier\n"
        f"engine = OnnxTokenClassifier.from_pretrained({str(int8_export)!r}, threads=1)\n"
        "assert engine.predict_words([['the', 'Insulin', '.']])[0].shape == (3, 9)\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_thread_count_reaches_the_session(int8_export):
    engine = OnnxTokenClassifier.from_pretrained(int8_export, threads=3)
    options = engine.session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    with pytest.raises(InputError) as info:
        OnnxTokenClassifier.from_pretrained(int8_export, threads=0)
    assert info.value.field == "threads"


# -- tokenizer without transformers ---------------------------------------------------------
def _tokenizer_dirs(root: Path) -> list[Path]:
    dirs = [root / "encoder"]
    real = [encoders_root() / name for name in ("minilm-l6", "mpnet-base")]
    return dirs + [d for d in real if (d / "tokenizer.json").is_file()]


def test_fast_tokenizer_windows_equal_transformers(root, torch_models):
    """The engine's tokenizers-only loader gives SubwordEncoder the very same windows as
    transformers, for the tokenizer.json the export writes and for the encoder's own
    (MiniLM's carries a fixed truncation/padding to 128 that must not apply)."""
    from transformers import AutoTokenizer

    words = WORD_LISTS + [["Ångström", "日本", "\x00", "🧬", "co-IP", "p.V600E", "A" * 200], LONG * 3]
    for directory in _tokenizer_dirs(root):
        reference_tokenizer = AutoTokenizer.from_pretrained(directory)
        resaved = root / f"resaved-{directory.name}"
        reference_tokenizer.save_pretrained(resaved)  # what export_onnx writes
        reference = SubwordEncoder(reference_tokenizer, max_length=24).encode(words)
        for source in (directory, resaved):
            tokenizer = FastTokenizer.from_directory(source)
            assert tokenizer.word_pieces is not None  # WordPiece: sub-words cached per word
            tiny_cache = FastTokenizer.from_directory(source)
            tiny_cache.CACHE_WORDS = 5  # starts over on every call
            uncached = FastTokenizer.from_directory(source)
            uncached.word_pieces = None  # whole word lists through encode_batch
            encoder = SubwordEncoder(tokenizer, max_length=24)
            for encoding in (
                encoder.encode(words[:3]) and encoder.encode(words),  # the second call reads cached words
                SubwordEncoder(tiny_cache, max_length=24).encode(words),
                SubwordEncoder(uncached, max_length=24).encode(words),
            ):
                assert encoding.unknown_words == reference.unknown_words > 0
                assert len(encoding.windows) == len(reference.windows)
                for got, want in zip(encoding.windows, reference.windows):
                    assert got.sequence == want.sequence
                    for field in ("input_ids", "words", "positions"):
                        assert np.array_equal(getattr(got, field), getattr(want, field)), (directory, field)
            assert len(tokenizer._cache) == len({w for ws in words for w in ws})


# -- bad input ---------------------------------------------------------------------------
def test_export_rejects_bad_options_and_targets(root, torch_models, fp32_exports):
    source = torch_models["bio"]
    cases = [
        (dict(out_dir=root / "x", quantize="fp16"), "quantize"),
        (dict(out_dir=root / "x", opset=9), "opset"),
        (dict(out_dir=source), "out_dir"),
        (dict(out_dir=fp32_exports["multilabel"]), "out_dir"),  # not empty, no overwrite
        (dict(out_dir=root / "encoder", overwrite=True), "out_dir"),  # not a biotag model directory
    ]
    for kwargs, field in cases:
        with pytest.raises(InputError) as info:
            export_onnx(source, **kwargs)
        assert info.value.field == field, kwargs
    with pytest.raises(InputError, match="already an ONNX export"):
        export_onnx(fp32_exports["bio"], root / "x")
    assert not (root / "x").exists()


def test_export_overwrites_a_previous_export(root, torch_models):
    out = export_onnx(torch_models["bio"], root / "again", quantize="none")
    export_onnx(torch_models["bio"], out, quantize="int8", overwrite=True)
    assert sorted(p.name for p in out.glob("*.onnx")) == ["model.int8.onnx"]
    assert not list(root.glob(".again.*"))  # no staging folder left behind


def test_engine_reports_unusable_directories(root, fp32_exports, tmp_path):
    with pytest.raises(InputError, match="biotag.json"):
        OnnxTokenClassifier.from_pretrained(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    for item in fp32_exports["bio"].iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(InputError) as info:
        OnnxTokenClassifier.from_pretrained(broken)
    assert info.value.path == str(broken / "model.onnx") and info.value.field == "onnx"
    with pytest.raises(InputError, match="not found"):
        OnnxTokenClassifier.from_pretrained(fp32_exports["bio"], file="model.int8.onnx")
    # a graph whose width does not fit the schema
    meta = json.loads((broken / "biotag.json").read_text())
    meta["schema"] = SCHEMES["multilabel"].to_dict()
    (broken / "biotag.json").write_text(json.dumps(meta))
    (broken / "model.onnx").write_bytes((fp32_exports["bio"] / "model.onnx").read_bytes())
    with pytest.raises(InputError) as info:
        OnnxTokenClassifier.from_pretrained(broken)
    assert info.value.field == "schema"
