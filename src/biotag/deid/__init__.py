"""Clinical de-identification: find protected health information (PHI) in notes and
replace it by type tags or consistent surrogates.

* :mod:`.rules`      regular-expression recognisers for structured PHI (dates, phones, IDs...)
* :mod:`.tagger`     a PHI token-classification model (trained by ``biotag train``) + the rules
* :mod:`.spans`      PHI spans and their union
* :mod:`.redact`     tag/surrogate output, offset map, and the no-leak checks
* :mod:`.surrogates` consistent made-up replacements; :mod:`.dates` date shifting
* :mod:`.data`       physionet-deid and presidio-synthetic as Documents, training folders
* :mod:`.evaluate`   span recall/precision (exact, any-overlap), token recall
* :mod:`.notes`      the inputs and output records of ``biotag deidentify``
"""

from biotag.deid.redact import DeidError, DeidResult, deidentify_text
from biotag.deid.rules import RuleRecogniser
from biotag.deid.spans import PhiSpan
from biotag.deid.surrogates import Surrogates
from biotag.deid.tagger import PhiTagger

__all__ = ["DeidError", "DeidResult", "PhiSpan", "PhiTagger", "RuleRecogniser", "Surrogates", "deidentify_text"]
