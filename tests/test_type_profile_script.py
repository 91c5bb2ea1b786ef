"""scripts/type_profile.py: mentions per type, cuts at inner hyphens, and one type's overlap with another."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from type_profile import cut_at_hyphen, profile  # noqa: E402

from biotag.document import Document  # noqa: E402


def test_hyphen_cuts_and_protein_on_gene_spans():
    text = "IL-2 and c-myc bind Lidocaine-induced TNF."
    assert cut_at_hyphen(text, 0, 2) and cut_at_hyphen(text, 2, 4)  # "IL" | "-2"
    assert not cut_at_hyphen(text, 0, 4) and not cut_at_hyphen(text, 9, 14)  # "IL-2", "c-myc" whole
    doc = Document("d", text)
    for start, end, kind in ((0, 4, "gene"), (0, 2, "protein"), (2, 4, "protein"), (9, 14, "gene"), (9, 14, "protein"), (38, 41, "protein")):
        doc.add_entity(start, end, kind)
    counts, cut, overlap = profile([doc], ("protein", "gene"))
    assert counts == {"gene": 2, "protein": 4} and cut == {"gene": 0, "protein": 2}
    assert overlap == [4, 1, 3]  # c-myc on a gene span; IL and -2 overlap IL-2; TNF alone
