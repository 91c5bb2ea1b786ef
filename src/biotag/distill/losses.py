"""The parts of the distillation loss (the hard-label part is the model's own loss,
:meth:`biotag.models.token_classifier.TokenClassifier.loss`).

All of them compare per-word outputs (read at each word's first sub-word), except
attention transfer, which compares sub-word attention maps and so needs the teacher to
share the student's tokenizer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from biotag.labels import B, I, O, LabelSchema

CERTAIN_NOT = -30.0  # a log-probability whose class is gone even at the softmax temperatures used


def softmax_groups(scores: torch.Tensor, schema: LabelSchema) -> torch.Tensor:
    """``[n, num_outputs]`` -> ``[n, groups, classes]``: the independent softmaxes of the
    scheme (``bio``: one over all tags; ``multilabel``: one O/B/I softmax per type)."""
    if schema.scheme == "multilabel":
        return scores.reshape(scores.shape[0], len(schema.types), 3)
    return scores.reshape(scores.shape[0], 1, schema.num_outputs)


def soft_label_loss(student: torch.Tensor, teacher: torch.Tensor, schema: LabelSchema, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of temperature-scaled softmaxes, averaged over words and
    softmax groups and multiplied by ``temperature²`` (Hinton et al.), so that its
    gradients keep their size whatever the temperature. ``teacher`` holds logits (or
    log-probabilities: the same distribution) of the same shape as ``student``."""
    if student.shape[0] == 0:
        return student.sum() * 0.0
    return grouped_kl(softmax_groups(student, schema), softmax_groups(teacher.to(student.dtype), schema), temperature)


def overrule_known_absent(teacher: torch.Tensor, known_absent: torch.Tensor, schema: LabelSchema) -> torch.Tensor:
    """The teacher's multilabel scores with a certain "O" wherever gold says a type is absent
    (``known_absent``, bool ``[n, n_types]``: a gold BC2GM gene under ``negative_evidence``
    ``{"chemical": ["gene"]}``), so that a type teacher's guess cannot teach what the gold
    corpus rules out. Other scores are returned as they are."""
    if schema.scheme != "multilabel" or not bool(known_absent.any()):
        return teacher
    certain_o = torch.full((3,), CERTAIN_NOT, dtype=teacher.dtype, device=teacher.device)
    certain_o[O] = 0.0
    groups = teacher.reshape(teacher.shape[0], len(schema.types), 3).clone()
    groups[known_absent] = certain_o
    return groups.reshape(teacher.shape)


def teacher_mentions(probs: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """The ``[start, end)`` word spans one type's O/B/I distributions ``[n_words, 3]`` spell
    out: runs of words whose P(B) + P(I) reaches ``threshold``, a new mention starting
    wherever B outweighs I."""
    inside = 1.0 - probs[:, O] >= threshold
    spans, start = set(), None
    for w in range(len(probs) + 1):
        begins = w < len(probs) and inside[w] and (start is None or probs[w, B] > probs[w, I])
        if start is not None and (w == len(probs) or not inside[w] or begins):
            spans.add((start, w))
            start = None
        if begins:
            start = w
    return spans


def teacher_evidence(
    teacher: torch.Tensor, schema: LabelSchema, exclusions: dict[int, list[tuple[int, ...]]], open_cells: torch.Tensor,
    threshold: float, lengths: Sequence[int], vouched: Callable[[int], set[tuple[int, int, int]]] | None = None,
) -> torch.Tensor:
    """bool ``[n, n_types]``: the cells where the teachers' own mention of one type rules out
    another's mention of exactly the same words (``exclusions``: excluded type index ->
    groups of evidence type indices, every type of a group must have the mention, one group
    is enough; mentions as :func:`teacher_mentions` reads them at ``threshold``),
    among ``open_cells``, the cells no gold decides; ``lengths`` splits the rows into
    sentences. Used as ``known_absent`` of :func:`overrule_known_absent`, so that the BC5CDR
    teacher's "chemical" on a gene symbol the BC2GM teacher calls a gene ("BRCA1") is not
    taught on text whose corpus annotates neither. Same span only: a chemical inside a gene's
    name ("glutathione" in "glutathione S-transferase") is a nested mention, and stays. So does
    a mention in ``vouched(k)`` (sentence ``k``'s ``(type index, start, end)``: a dictionary's
    name of that type, such as "insulin" or "cisplatin", which the gene teachers also claim;
    asked only for sentences with a mention to overrule). A group of several types asks each of
    them: the BC2GM and JNLPBA teachers agree on gene symbols ("G6PD") far more often than on
    the chemical abbreviations each misreads alone ("GSH" as a gene, "imatinib" as a protein)."""
    absent = torch.zeros(teacher.shape[0], len(schema.types), dtype=torch.bool)
    if schema.scheme != "multilabel" or not exclusions or teacher.shape[0] == 0:
        return absent.to(teacher.device)
    probs = torch.softmax(teacher.detach().reshape(teacher.shape[0], len(schema.types), 3).float(), dim=-1).cpu().numpy()
    open_np = open_cells.cpu().numpy()
    offset = 0
    for k, n in enumerate(lengths):
        rows = slice(offset, offset + n)
        names: set[tuple[int, int, int]] | None = None  # vouched(k), asked at most once
        found: dict[int, set[tuple[int, int]]] = {}  # each evidence type's mentions, read once per sentence
        for target, groups in exclusions.items():
            if not open_np[rows, target].any():
                continue
            for s in {s for g in groups for s in g} - found.keys():
                found[s] = teacher_mentions(probs[rows, s], threshold)
            evidence = set().union(*(set.intersection(*(found[s] for s in g)) for g in groups))
            candidates = teacher_mentions(probs[rows, target], threshold) & evidence
            if candidates and vouched is not None:
                names = vouched(k) if names is None else names
                candidates = {(start, end) for start, end in candidates if (target, start, end) not in names}
            for start, end in candidates:
                absent[offset + start : offset + end, target] = True
        offset += n
    return absent.to(teacher.device) & open_cells


def grouped_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the temperature-scaled softmaxes over the last axis of
    ``[n, groups, classes]`` scores, averaged over rows and groups, times ``temperature²``."""
    log_s = F.log_softmax(student / temperature, dim=-1)
    log_t = F.log_softmax(teacher.to(student.dtype) / temperature, dim=-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)  # [n, groups]
    return kl.mean() * temperature**2


class HiddenProjections(torch.nn.Module):
    """One learned linear map per distilled layer pair from the student's width to the
    teacher's (TinyBERT's ``W_h``); none where the widths are equal."""

    def __init__(self, n_pairs: int, student_width: int, teacher_width: int) -> None:
        super().__init__()
        self.maps = torch.nn.ModuleList(
            [torch.nn.Linear(student_width, teacher_width) for _ in range(n_pairs)] if student_width != teacher_width else []
        )

    def forward(self, index: int, hidden: torch.Tensor) -> torch.Tensor:
        return self.maps[index](hidden) if len(self.maps) else hidden


def hidden_state_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], projections: HiddenProjections) -> torch.Tensor:
    """Mean squared error between the projected student hidden states and the
    teacher's, per layer pair (each ``[n_words, width]``), averaged over the pairs."""
    parts = [F.mse_loss(projections(i, s), t.to(s.dtype)) for i, (s, t) in enumerate(zip(student, teacher))]
    return torch.stack(parts).mean()


def attention_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between head-averaged attention distributions
    (``[batch, heads, length, length]`` each; averaging over heads lets the two models
    have different head counts), over the rows of real (non-padding) query tokens."""
    rows = attention_mask.bool()  # [batch, length]
    parts = []
    for s, t in zip(student, teacher):
        diff = (s.mean(1) - t.to(s.dtype).mean(1))[rows]  # [real queries, length]
        parts.append(diff.pow(2).sum(-1).mean())
    return torch.stack(parts).mean()
