"""scripts/teacher_labelling_speed.py: a teacher and its ONNX exports label alike (fp32) or not (int8)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from teacher_labelling_speed import compare, main, sentence_words  # noqa: E402

from biotag.runtime.export import export_onnx  # noqa: E402


def test_fp32_export_labels_like_the_model_and_int8_does_not(toy_trained, tmp_path, capsys):
    model_dir, corpus = toy_trained
    fp32 = export_onnx(model_dir, tmp_path / "fp32", quantize="none")
    int8 = export_onnx(model_dir, tmp_path / "int8", quantize="int8")
    words = sentence_words(str(corpus), 12)
    assert len(words) == 12 and all(words)
    seconds, diff = compare(str(model_dir), str(fp32), words, rounds=2)
    assert diff < 1e-4 and all(len(s) == 2 and min(s) > 0 for s in seconds.values())
    _, int8_diff = compare(str(model_dir), str(int8), words, rounds=1)
    assert int8_diff > 10 * diff
    main([str(model_dir), str(fp32), "--corpus", str(corpus), "--sentences", "5", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "5 sentences" in out and "largest probability difference" in out
