"""scripts/all_types_table.py: the seven columns of an all-types model and their macro."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from all_types_table import main  # noqa: E402


def _report(micro: float, types: dict[str, float]) -> dict:
    return {"micro": {"f1": micro}, "types": {t: {"f1": f} for t, f in types.items()}}


def _write(folder: Path, corpus: str, split: str, report: dict) -> None:
    (folder / f"eval-{corpus}-{split}.json").write_text(json.dumps(report))


def test_bc5cdr_gives_two_columns_by_type_and_the_macro_is_over_seven(tmp_path, capsys):
    for split, shift in (("devel", 0.0), ("test", 0.1)):
        for corpus, micro in (("ncbi-disease", 0.80), ("bc2gm", 0.70), ("jnlpba", 0.72), ("linnaeus", 0.90), ("s800", 0.60)):
            _write(tmp_path, corpus, split, _report(micro - shift, {"x": 0.0}))
        _write(tmp_path, "bc5cdr", split, _report(0.5, {"chemical": 0.9 - shift, "disease": 0.8 - shift}))
    main([str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    cells = [c.strip() for c in out[2].strip("|").split("|")]
    assert cells[1:9] == ["80.00", "90.00", "80.00", "70.00", "72.00", "90.00", "60.00", "**77.43**"]
    assert cells[9:] == ["70.00", "80.00", "70.00", "60.00", "62.00", "80.00", "50.00", "**67.43**"]
    assert len(out[0].split("|")) == len(out[1].split("|")) == len(out[2].split("|"))


def test_a_missing_report_names_the_column_and_file(tmp_path):
    _write(tmp_path, "ncbi-disease", "devel", _report(0.8, {}))
    with pytest.raises(SystemExit, match="BC5CDR-chemical devel: eval-bc5cdr-devel.json"):
        main([str(tmp_path)])


def test_variant_columns_come_after_the_macros_and_mark_a_model_without_them(tmp_path, capsys):
    with_variant, without = tmp_path / "with", tmp_path / "without"
    for folder in (with_variant, without):
        folder.mkdir()
        for split in ("devel", "test"):
            for corpus in ("ncbi-disease", "bc2gm", "jnlpba", "linnaeus", "s800"):
                _write(folder, corpus, split, _report(0.8, {}))
            _write(folder, "bc5cdr", split, _report(0.5, {"chemical": 0.8, "disease": 0.8}))
    _write(with_variant, "tmvar", "devel", _report(0.1, {"variant": 0.875}))
    _write(with_variant, "tmvar", "test", _report(0.1, {"variant": 0.8592}))
    main([str(with_variant), str(without), "--variant"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].rstrip(" |").endswith("tmVar variant devel | tmVar variant test")
    first, second = ([c.strip() for c in line.strip("|").split("|")] for line in out[2:4])
    assert first[8] == first[16] == "**80.00**"  # the macros do not count the variant
    assert first[17:] == ["87.50", "85.92"] and second[17:] == ["—", "—"]
    assert len({len(line.split("|")) for line in out}) == 1
