"""The typed specs a job carries through every stage: what the person asked for (`JobSpec`, stored
on the job row) and what the teacher planned from it (`TaskSpec`, the plan stage's result).

Plain pydantic, no settings and no I/O: the API validates requests against its own limits
(`app.schemas.JobCreate`) and builds a `JobSpec`; workers read the stored JSON back with
`JobSpec.model_validate`, which also accepts every spec written before these types existed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from app.answer_shapes import FieldSpec, tools_prompt
from app.answer_shapes.call_grammar import CallGrammar


class TaskType(str, Enum):
    """What kind of answer the student learns to give."""

    CLASSIFICATION = "classification"
    EXTRACTION = "extraction"
    QA = "qa"
    TOOL_CALLING = "tool_calling"


TASK_TYPE_NAMES: tuple[str, ...] = tuple(t.value for t in TaskType)

SOFT_LABELS: Final = "soft_labels"
ON_POLICY: Final = "on_policy"


class Strict(BaseModel):
    """Unknown fields are an error, so a typo never silently changes a job."""

    model_config = ConfigDict(extra="forbid")


class Row(BaseModel):
    """One stored input with its expected output (a seed example or a test row); `tools`: for a
    tool-calling job with `tools_in_prompt`, the names of the job's tools offered with this input
    (None: all of them)."""

    input: str
    output: str
    tools: list[str] | None = None

    @model_serializer(mode="wrap")
    def _tools_only_when_named(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Stored specs keep a row as {input, output} unless it names its tools.
        data: dict[str, Any] = handler(self)
        if data.get("tools") is None:
            data.pop("tools", None)
        return data


def _default(text: str) -> dict[str, Any]:
    # The default of a size-dependent option, in words, for the docs table and the OpenAPI document.
    return {"default_text": text}


class TrainingOptions(Strict):
    """How the student is fine-tuned: the one list of training options, each with its default
    and help text. Options left `None` get a default that depends on the run (the student's
    size, the data set's size or the distillation), filled in by `workers.training.options.resolve`."""

    method: Literal["lora", "full"] | None = Field(
        None, description="full fine-tuning or LoRA adapters",
        json_schema_extra=_default("`full` for students up to 500M parameters, else `lora`"))
    epochs: float | None = Field(
        None, gt=0, le=100, description="passes over the train split",
        json_schema_extra=_default("3, or more on a small data set so the run makes at least 40 optimiser steps "
                                   "(at most 20 epochs)"))
    learning_rate: float | None = Field(
        None, gt=0, le=1, description="peak learning rate (AdamW, linear decay to 0, no warm-up)",
        json_schema_extra=_default("5e-5 (`full`), 2e-4 (`lora`)"))
    batch_size: int = Field(
        8, ge=1, le=1024,
        description="examples per optimiser step (run as micro-batches with accumulated gradients when long sequences "
                    "would not fit in memory)")
    max_length: int = Field(
        256, ge=16, le=32768,
        description="longest training sequence in tokens; on-policy: only caps the student's answer length")
    lora_r: int = Field(16, ge=1, le=1024, description="LoRA rank (dropout 0.05, on every linear layer)")
    lora_alpha: int = Field(32, ge=1, le=4096, description="LoRA scaling numerator")
    soft_label_weight: float = Field(
        0.5, ge=0, le=1, description="weight `w` of the KL term against the teacher's soft labels (classification)")
    temperature: float | None = Field(
        None, gt=0, le=20,
        description="distillation temperature `T` (on-policy: also the student's sampling temperature)",
        json_schema_extra=_default("2 (`soft_labels`), 1 (`on_policy`)"))
    seed: int = Field(0, ge=0, description="random seed of the data order, generation buckets and curation")
    distillation: Literal["soft_labels", "on_policy"] = Field(
        SOFT_LABELS,
        description=(
            "`soft_labels`: fine-tune on the teacher's data, plus a KL term against its label distribution "
            "(classification). `on_policy`: TRL's DistillationTrainer; the student writes its own answers and the "
            "teacher's weights score every token. Needs the teacher's weights and a teacher that shares the "
            "student's vocabulary (the bundled pair does not), else the train stage fails with "
            "`distillation_unavailable`"))
    rounds: int = Field(
        1, ge=1, le=2,
        description=(
            "`2` adds the error-driven round (the `refine` stage, after `train`): the teacher writes new inputs "
            "like the validation rows the first round's student got wrong and labels them, and training goes on "
            "from the first round's model on them and as many of the old train rows"))
    teacher_weights: str | None = Field(
        None, min_length=1, max_length=512,
        description="on-policy only: a local folder or hub id of the teacher's weights",
        json_schema_extra=_default("the folder the job's teacher is served from (`TEACHER_MODEL_PATH`, or the "
                                   "bundled teacher)"))

    @model_validator(mode="before")
    @classmethod
    def _none_means_default(cls, data: Any) -> Any:
        # Specs stored before the defaults lived here hold `null` for every option not given.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @model_validator(mode="after")
    def _teacher_weights_need_on_policy(self) -> TrainingOptions:
        if self.teacher_weights is not None and self.distillation != ON_POLICY:
            raise ValueError("teacher_weights is only used with distillation: on_policy")
        return self


def options_table(model: type[BaseModel]) -> str:
    """The Markdown table of every option of `model`, its default and what it does (the docs hold
    exactly these tables; tests keep them equal)."""
    lines = ["| option | default | what it does |", "| --- | --- | --- |"]
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        default = extra.get("default_text") or ("see description" if field.default is None else f"`{field.default}`")
        lines.append(f"| `{name}` | {default} | {field.description} |")
    return "\n".join(lines) + "\n"


def training_options_table() -> str:
    """The training options' table (docs/training.md)."""
    return options_table(TrainingOptions)


class CurationOptions(Strict):
    """How the teacher's data is made trustworthy before training: the levers that keep what the
    teacher is sure and consistent about and drop the rest (each recorded in its stage's metrics)."""

    votes: int | None = Field(
        None, ge=1, le=7,
        description="teacher answers per input, each asked in a different phrasing (the labels in another order and "
                    "other words); the majority answer (for extraction, QA and calls: the same normalised object or "
                    "text) is kept with its agreement, and classification's soft labels average over the answers. "
                    "Default: 3 for classification, 1 for the other types (a free answer costs about ten labels)")
    min_agreement: float = Field(
        0.6, ge=0, le=1,
        description="drop a row when fewer than this share of its votes agree with the majority (`low_agreement`)")
    intent_check: bool = Field(
        True,
        description="classification: drop a row whose teacher label differs from the label its input was written for "
                    "while the teacher is unsure (its probability of the label under `intent_confidence`; "
                    "`intent_mismatch`)")
    intent_confidence: float = Field(
        0.8, ge=0, le=1, description="the teacher probability at or above which a label that contradicts the "
                                     "intended one is trusted")
    plan_per_label: bool = Field(
        True,
        description="classification: plan the topics of each label on their own, so no label's inputs are asked to "
                    "be about another label's subject")
    top_up_rounds: int = Field(
        1, ge=0, le=5,
        description="generation rounds after curation for labels short of their share, before balancing drops data")
    min_label_share: float = Field(
        0.5, ge=0, le=1,
        description="stop before training (`label_short`) when a label holds less than this share of an even split "
                    "of the data set; 0 trains on whatever the data holds")
    seed_copies: int = Field(
        2, ge=0, le=10,
        description="times each seed example with an output joins the train split (its weight); 0 only shows seeds "
                    "to the teacher")
    rationales: bool = Field(
        False,
        description="distilling step by step: the teacher also gives a one-sentence reason for each answer, and the "
                    "student learns, as a second example of each row, to give that reason when asked why; served, it "
                    "answers as before")


#: Teacher answers per input when `votes` is not given: labels are cheap (one constrained token),
#: free answers are not.
CLASSIFICATION_VOTES = 3


def votes_for(options: CurationOptions, task_type: TaskType) -> int:
    """How many times the teacher answers each input of this task type."""
    if options.votes is not None:
        return options.votes
    return CLASSIFICATION_VOTES if task_type == TaskType.CLASSIFICATION else 1


def curation_options_table() -> str:
    """The curation options' table (docs/curation.md)."""
    return options_table(CurationOptions)


#: `open_book`: the input holds a passage and a question, and the answer must come from the passage
#: (or be the refusal when the passage does not answer it); `closed_book`: a question alone.
QAMode = Literal["open_book", "closed_book"]
#: What an open-book answer says when the passage does not answer the question.
QA_REFUSAL: Final = "The passage does not answer this question."


def _words(text: str) -> str:
    return " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def is_refusal(text: str) -> bool:
    """Is an answer the stated refusal of open-book QA (in any case, with or without its full stop)?"""
    return _words(text) == _words(QA_REFUSAL)


#: A GGUF file the package stage makes: `f16` (half precision, the file every other one is
#: quantized from), `q8_0` (8-bit), `q5_k_m` and `q4_k_m` (5- and 4-bit k-quants).
ExportFormat = Literal["f16", "q8_0", "q5_k_m", "q4_k_m"]
#: Every export format, in the order they are made and listed (largest first).
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("f16", "q8_0", "q5_k_m", "q4_k_m")
#: The exports of a job that names none.
DEFAULT_EXPORTS: tuple[ExportFormat, ...] = ("f16", "q8_0")


def normalise_exports(values: Sequence[str]) -> list[ExportFormat]:
    """`values` as a job's exports: each once, `f16` always (the others are quantized from it),
    in the order of EXPORT_FORMATS."""
    chosen = {"f16", *values}
    return [name for name in EXPORT_FORMATS if name in chosen]


class JobSpec(BaseModel):
    """What a person asked for, with the service's defaults filled in: the job row's `spec`."""

    model_config = ConfigDict(extra="ignore")

    task: str
    task_type: TaskType | None = None
    labels: list[str] | None = None
    fields: list[FieldSpec] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    tools_in_prompt: bool = False
    qa_mode: QAMode | None = None
    examples: list[Row] = Field(default_factory=list)
    test_set: list[Row] = Field(default_factory=list)
    #: Real unlabeled inputs the person imported (e.g. production logs): labelled by the teacher
    #: into the train split, and shown to generation as examples of real inputs.
    inputs: list[str] = Field(default_factory=list)
    teacher: str
    student: str
    num_examples: int = 200
    until: Literal["data", "model"] = "model"
    training: TrainingOptions = Field(default_factory=TrainingOptions)
    curation: CurationOptions = Field(default_factory=CurationOptions)
    #: The GGUF files the package stage makes (normalised: see `normalise_exports`).
    exports: list[ExportFormat] = Field(default_factory=lambda: list(DEFAULT_EXPORTS))
    #: Set on a job that trains on another job's data (`from_job`): that job, and its data set's
    #: revision when it was copied.
    from_job: str | None = None
    data_revision: int | None = None

    @field_validator("exports")
    @classmethod
    def _exports(cls, value: list[ExportFormat]) -> list[ExportFormat]:
        return normalise_exports(value)

    @property
    def seed(self) -> int:
        """The job's random seed, shared by every stage that samples."""
        return self.training.seed


class Label(BaseModel):
    """A classification label with the teacher's one-line description of it."""

    name: str
    description: str


class TaskSpec(BaseModel):
    """The plan stage's task spec: the input of every later teacher stage and of training."""

    model_config = ConfigDict(extra="ignore")

    task: str
    task_type: TaskType
    instruction: str = ""
    labels: list[Label] = Field(default_factory=list)
    output_fields: list[str] = Field(default_factory=list)
    fields: list[FieldSpec] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    #: Tool calling: the student reads the offered tools from a system message on every request
    #: (`tools_prompt`) instead of having them in its weights.
    tools_in_prompt: bool = False
    qa_mode: QAMode | None = None
    topics: list[str] = Field(default_factory=list)
    #: Classification with `plan_per_label`: each label's own topics (a label missing here uses `topics`).
    label_topics: dict[str, list[str]] = Field(default_factory=dict)
    styles: list[str] = Field(default_factory=list)
    lengths: list[str] = Field(default_factory=list)
    #: A few of the person's answered seed examples, shown to the teacher as answered turns before
    #: every input it labels (`workers.answered_examples.shown_examples` picks them; never a test row).
    answered_examples: list[Row] = Field(default_factory=list)

    @property
    def label_names(self) -> list[str]:
        """The label names of a classification task; empty for every other task type."""
        if self.task_type != TaskType.CLASSIFICATION:
            return []
        return [label.name for label in self.labels]

    @property
    def extraction_fields(self) -> list[FieldSpec]:
        """The fields of an extraction answer (plain string spans for plans that named only fields)."""
        return self.fields or [FieldSpec(name=name) for name in self.output_fields]

    def offered_tools(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The tools offered with one input: the plan's tools that `names` names, in that order (a
        client's order, or training's shuffled one); all of them, in the plan's order, when None."""
        if names is None:
            return list(self.tools)
        by_name = {tool.get("function", {}).get("name"): tool for tool in self.tools}
        return [by_name[name] for name in dict.fromkeys(names) if name in by_name]

    def offering(self, names: Sequence[str] | None) -> TaskSpec:
        """This spec with only the tools offered with one input (itself when every tool is)."""
        if names is None or not self.tools_in_prompt:
            return self
        return self.model_copy(update={"tools": self.offered_tools(names)})

    def call_grammar(self, tool_names: Sequence[str] | None = None) -> CallGrammar | None:
        """The grammar a student's answer to an input offered `tool_names` is decoded under, in
        evaluate, `/v1` and llama.cpp alike: the offered tools' calls or plain text
        (`app.answer_shapes.call_grammar`); None for other task types."""
        if self.task_type != TaskType.TOOL_CALLING:
            return None
        tools = self.offering(tool_names).tools
        return CallGrammar(tools) if tools else None

    def row_call_grammars(self) -> Callable[[Row], CallGrammar | None]:
        """`call_grammar` of each row's offered tools, made once per set of tools."""
        made: dict[tuple[str, ...] | None, CallGrammar | None] = {}

        def of_row(row: Row) -> CallGrammar | None:
            key = tuple(row.tools) if row.tools is not None else None
            if key not in made:
                made[key] = self.call_grammar(row.tools)
            return made[key]

        return of_row

    def student_messages(self, text: str, tool_names: Sequence[str] | None = None) -> list[dict[str, str]]:
        """What the tuned student is asked for one input, in training, evaluation and serving alike:
        the raw input (the task lives in its weights); with `tools_in_prompt`, after a system
        message showing the offered tools (`tools_prompt`; none offered: no system message)."""
        user = {"role": "user", "content": text}
        offered = self.offered_tools(tool_names) if self.tools_in_prompt else []
        if not offered:
            return [user]
        return [{"role": "system", "content": tools_prompt(offered)}, user]

    def describe(self, label: str) -> str:
        """The planned description of `label` (the name itself when there is none)."""
        return next((item.description for item in self.labels if item.name == label), label)
