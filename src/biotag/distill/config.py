"""The distillation configuration: a :class:`TrainConfig` plus teacher, student and loss
settings (the training loop, corpora and checkpoints are the NER trainer's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from biotag.distill.schedule import SHAPES, WEIGHTINGS
from biotag.distill.teachers import TYPE_MODES
from biotag.errors import InputError
from biotag.training.config import TrainConfig


SOFT_LOSSES = ("auto", "kl", "crf")


@dataclass
class DistillConfig(TrainConfig):
    """Everything a distillation run depends on.

    ``teacher`` is a trained model directory, or a list of them: an ensemble whose
    averaged soft labels the student learns (:mod:`biotag.distill.teachers`; the first is
    the primary teacher). The student is ``encoder`` (any local Hugging Face encoder directory or short name,
    with a new head) or, with ``student_layers``, the teacher itself with only those
    encoder layers kept (DistilBERT-style: embeddings, kept layers and classifier start
    from the teacher's weights). It predicts the teacher's types with the teacher's
    scheme: ``scheme`` and ``types`` are taken from the teacher (``scheme`` left unset;
    ``types``, when given, must be the teacher's).

    Loss (see :mod:`biotag.distill.schedule` for the weighting): the gold-label loss,
    the soft-label loss (``soft_loss``: ``kl``, the KL between teacher and student
    softmaxes at ``kd_temperature``; ``crf``, for a CRF student, the cross-entropy of its
    CRF distribution against the teacher's word distributions,
    :meth:`biotag.models.crf.CRF.soft_loss`, no temperature; ``auto``, the default: ``crf``
    for a CRF student, else ``kl``), and optionally
    the MSE between hidden states (``hidden_weight``; layer pairs ``hidden_layers`` as
    ``[student, teacher]`` indices of ``hidden_states``, 0 being the embeddings; by
    default each student layer with the teacher layer it came from, or the uniform map
    ``i -> i * N_teacher / N_student``) and between head-averaged attention maps
    (``attention_weight``, same pairs, needs the teacher's tokenizer).

    ``type_teachers`` are model directories (e.g. the best single-corpus model of each
    corpus) that each predict some of the student's types: for those types they replace the
    teacher's soft labels (:class:`biotag.distill.teachers.Teachers`; a
    ``multilabel`` student only). The teacher then only gives the student its layers, decoder,
    types and whatever types no type teacher predicts. ``type_mode`` ``corpus`` (default): on a
    gold corpus' sentences, the type teachers trained on that corpus teach its types alone;
    ``mean``: every type teacher of a type, everywhere. ``added_types`` maps types the
    teacher does not predict to one whose head starts theirs (``{"protein": "gene"}``):
    the student predicts them too, corpus labels naming them keep them
    (:meth:`biotag.entity_types.TypeMap.keeping`: JNLPBA's ``protein`` becomes ``protein``,
    not ``gene``), and type teachers must teach them (the JNLPBA teacher's ``gene``).

    Weak supervision: ``soft_text`` files (``.jsonl`` with text or title+abstract,
    records with ``in_test_split`` dropped, or ``.txt``), the first ``soft_limit``
    documents, are labelled by the teacher only; ``soft_ratio`` text batches are mixed
    in per gold batch. Teacher outputs are cached in ``soft_cache`` (default
    ``<output_dir>/teacher-cache``; share one folder between runs of the same teacher)
    as fp16 logits or, with ``soft_top_k``, top-k probabilities.

    Cross-type evidence: ``negative_evidence`` (:class:`TrainConfig`'s) makes gold spans of
    one type a certain "O" of another, in the hard and the soft labels; ``teacher_negative_evidence``
    does the same with the teachers' own mentions (``{"chemical": ["gene", "protein"]}``: where a
    type teacher's gene mention — words of P(B) + P(I) at least ``teacher_evidence_threshold`` —
    covers exactly the words of a chemical mention, its chemical soft label becomes a certain
    "O"), on unlabelled text and on corpora that do not annotate the excluded type; where a
    corpus annotates it, its gold and its own teacher decide. With ``teacher_evidence_dictionary`` (True:
    the default dictionaries, or a folder saved by ``DictionaryMatcher.save``) a name the
    dictionary gives the excluded type ("insulin" as a chemical) keeps it.
    ``teacher_evidence_agreement`` ``all`` asks every evidence type of a rule for the mention
    (``any``, the default: one is enough). A list in a rule is a group whose types must all
    have the mention whatever the agreement, and any group is enough:
    ``{"chemical": [["gene", "protein"], ["variant"]]}`` rules a chemical out where the gene and
    protein teachers agree on it, or where the variant teacher alone has it.

    Pruning: ``prune_sparsity`` > 0 prunes the encoder's linear weights by magnitude
    along Zhu & Gupta's cubic schedule from ``prune_start`` to ``prune_end`` (shares of
    the training steps), masks updated every ``prune_every`` steps. Only models at the
    final sparsity are candidates for the best model.

    ``device`` (:class:`TrainConfig`'s: cpu, cuda, cuda:N or auto) holds the teacher as
    well as the student; a teacher-output cache written on one device serves runs on another.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ("teacher", "corpora", "output_dir")
    RESULT_NEUTRAL: ClassVar[tuple[str, ...]] = ("threads", "output_dir", "soft_cache")

    encoder: str | None = None  # the student encoder (or student_layers)
    scheme: str | None = None  # the teacher's
    unify_types: bool | None = None  # None: as the teacher was trained (its card), else True
    # a student's own word features stay opt-in: they cost speed, and hidden-state and
    # attention transfer cannot be combined with them
    dictionary_features: bool | str = False
    shape_features: bool = False
    teacher: str | list[str] = ""
    type_teachers: list[str] = field(default_factory=list)
    added_types: dict[str, str] = field(default_factory=dict)  # new type -> type whose head rows start it
    type_mode: str = "corpus"  # how type teachers share a type: corpus (a corpus' own teacher first) or mean
    student_layers: list[int] | None = None
    student_width: int | None = None  # cut the student's hidden size (weight subcloning)
    student_ffn: float = 0.0  # share of each student layer's FFN neurons to remove
    kd_temperature: float = 2.0
    soft_loss: str = "auto"
    weighting: str = "dynamic"
    hard_weight: float = 1.0  # fixed weighting
    soft_weight: float = 1.0  # fixed weighting
    soft_floor: float = 0.1  # dynamic weighting: the soft weight's final value
    schedule: str = "linear"  # dynamic weighting: linear or cosine
    hidden_weight: float = 0.0
    attention_weight: float = 0.0
    hidden_layers: list[list[int]] | None = None
    # excluded type -> types whose confident teacher mention excludes it, where no gold decides
    teacher_negative_evidence: dict[str, list[str | list[str]]] = field(default_factory=dict)
    teacher_evidence_threshold: float = 0.5
    teacher_evidence_dictionary: bool | str = False  # names it holds keep their type (True: the default dictionaries)
    teacher_evidence_agreement: str = "any"  # any or all of a rule's evidence types must have the mention
    soft_text: list[str] = field(default_factory=list)
    soft_limit: int | None = None
    soft_ratio: float = 1.0
    soft_top_k: int = 0
    soft_cache: str | None = None
    prune_sparsity: float = 0.0
    prune_start: float = 0.0
    prune_end: float = 0.7
    prune_every: int = 10

    def __post_init__(self) -> None:
        # scheme comes from the teacher: TrainConfig's check applies only when it is set
        scheme, self.scheme = self.scheme, self.scheme or "bio"
        super().__post_init__()
        self.scheme = scheme
        if isinstance(self.teacher, (list, tuple)):
            self.teacher = [str(t) for t in self.teacher]
            if len(set(self.teacher)) != len(self.teacher):
                raise InputError(f"an ensemble lists each teacher once, got {self.teacher}", field="teacher")
        if isinstance(self.type_teachers, str):
            self.type_teachers = [self.type_teachers]
        self.type_teachers = [str(t) for t in self.type_teachers]
        if not self.teacher or not all(self.teacher_dirs):
            raise InputError("a teacher model directory is needed", field="teacher")
        if (self.encoder is None) == (self.student_layers is None):
            raise InputError("give either a student encoder or the teacher layers to keep (student_layers)", field="encoder")
        if self.student_layers is not None:
            layers = self.student_layers
            if not layers or not all(isinstance(i, int) and i >= 0 for i in layers) or len(set(layers)) != len(layers):
                raise InputError(f"must be distinct layer numbers, got {layers!r}", field="student_layers")
            self.student_layers = sorted(layers)
        self._require_int("student_width", minimum=1, optional=True)
        self._require_in("student_ffn", "[0, 1)")
        if self.weighting not in WEIGHTINGS:
            raise InputError(f"must be one of {WEIGHTINGS}, got {self.weighting!r}", field="weighting")
        added = self.added_types
        if not isinstance(added, dict) or not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in added.items()):
            raise InputError(f"must map each new type to the type whose head starts it, got {added!r}", field="added_types")
        if added and not self.type_teachers:
            raise InputError("added types are taught by type teachers only; none is given", field="added_types")
        if self.type_mode not in TYPE_MODES:
            raise InputError(f"must be one of {TYPE_MODES}, got {self.type_mode!r}", field="type_mode")
        if self.soft_loss not in SOFT_LOSSES:
            raise InputError(f"must be one of {SOFT_LOSSES}, got {self.soft_loss!r}", field="soft_loss")
        if self.schedule not in SHAPES:
            raise InputError(f"must be one of {SHAPES}, got {self.schedule!r}", field="schedule")
        self._require_in("kd_temperature", "(0, inf)")
        for name in ("hard_weight", "soft_weight", "hidden_weight", "attention_weight", "soft_ratio"):
            self._require_in(name, "[0, inf)")
        rules = self.teacher_negative_evidence

        def other_types(entry: object, target: str) -> bool:  # a type, or a group of them, none the target
            names = entry if isinstance(entry, list) else [entry]
            return bool(names) and all(isinstance(t, str) and t and t != target for t in names)

        if not isinstance(rules, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and v and all(other_types(e, k) for e in v) for k, v in rules.items()
        ):
            raise InputError(f"must map a type to the other types (or groups of types) whose teacher mentions exclude it, got {rules!r}", field="teacher_negative_evidence")
        if self.teacher_evidence_agreement not in ("any", "all"):
            raise InputError(f"must be any or all, got {self.teacher_evidence_agreement!r}", field="teacher_evidence_agreement")
        for name in ("soft_floor", "prune_start", "prune_end", "teacher_evidence_threshold"):
            self._require_in(name, "[0, 1]")
        self._require_in("prune_sparsity", "[0, 1)")
        if self.prune_sparsity and not self.prune_start < self.prune_end:
            raise InputError(f"prune_start ({self.prune_start}) must come before prune_end", field="prune_end")
        self._require_int("soft_top_k", minimum=0)
        self._require_int("prune_every", minimum=1)
        self._require_int("soft_limit", minimum=1, optional=True)
        if isinstance(self.soft_text, str):
            self.soft_text = [self.soft_text]
        self.soft_text = [str(p) for p in self.soft_text]
        if self.soft_text and self.weighting == "fixed" and not self.soft_weight:
            raise InputError("unlabelled text teaches only through soft labels: a soft weight of 0 leaves it nothing", field="soft_text")
        if (self.dictionary_features or self.shape_features) and (self.hidden_weight or self.attention_weight):
            # transfer reads the encoder's own states and logits, which bypass the feature fusion
            raise InputError("hidden-state and attention transfer are not available for a student with word features", field="hidden_weight")
        pairs = self.hidden_layers
        if pairs is not None and not all(isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) and i >= 0 for i in p) for p in pairs):
            raise InputError(f"must be [student, teacher] layer pairs, got {pairs!r}", field="hidden_layers")

    def teacher_evidence_groups(self) -> dict[str, list[tuple[str, ...]]]:
        """``teacher_negative_evidence`` as groups: excluded type -> the groups of evidence types
        that must all have a mention to rule it out (any one group is enough)."""
        groups: dict[str, list[tuple[str, ...]]] = {}
        for target, entries in self.teacher_negative_evidence.items():
            nested = [tuple(e) for e in entries if isinstance(e, list)]
            single = [e for e in entries if isinstance(e, str)]
            flat = [tuple(single)] if self.teacher_evidence_agreement == "all" and single else [(t,) for t in single]
            groups[target] = flat + nested
        return groups

    @property
    def teacher_dirs(self) -> list[str]:
        """The teacher directories, the primary one first."""
        return [self.teacher] if isinstance(self.teacher, str) else list(self.teacher)
