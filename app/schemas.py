"""Request and response bodies of the REST API (pydantic)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.answer_shapes import (
    FieldSpec,
    ToolsError,
    check_call,
    fields_from_json_schema,
    parse_fields_text,
    validate_tools,
)
from app.auth import OWNER_PATTERN
from app.config import get_settings
from app.specs import (
    DEFAULT_EXPORTS,
    CurationOptions,
    ExportFormat,
    JobSpec,
    QAMode,
    Strict,
    TaskType,
    TrainingOptions,
)


def storable_text(value: str) -> str:
    """`value` if Postgres can store it in the job's spec: JSON lets a body send a NUL character
    (`\\u0000`) and a lone surrogate (`\\ud800`), and Postgres refuses both."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must not contain unpaired surrogates (\\ud800-\\udfff); send UTF-8 text") from None
    return value


#: What a body with `from_job` may give: the rest is the source job's.
RETRAIN_FIELDS = frozenset({"exports", "from_job", "student", "teacher", "training", "until"})

#: At most this many rows' problems are listed in one answer (a wrong column can spoil them all).
MAX_ROW_ERRORS = 20


#: A problem of one row: where it is (`("test_set", 3, "output")`) and what is wrong there.
RowProblem = tuple[tuple[str | int, ...], str]


def row_errors(problems: list[RowProblem]) -> ValidationError:
    """One validation error per problem, each at its own location (`test_set.3.output`), so an API
    client or the dashboard can point at the row. Beyond MAX_ROW_ERRORS, one more says how many
    rows were not listed."""
    shown = problems[:MAX_ROW_ERRORS]
    if len(problems) > len(shown):
        where = problems[MAX_ROW_ERRORS][0][0]
        shown.append(((where,), f"and {len(problems) - len(shown)} more rows with such problems"))
    return ValidationError.from_exception_data("JobCreate", [
        InitErrorDetails(type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=loc,
                         input=None) for loc, message in shown])


def _storable_input(value: object) -> object:
    return storable_text(value) if isinstance(value, str) else value


#: Every text field of a request: a string Postgres can store (checked first, so the message is ours).
Text = Annotated[str, BeforeValidator(_storable_input)]


def _input_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    limit = get_settings().max_row_chars
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
    return value


#: One imported real input: storable, not blank, at most MAX_ROW_CHARS long (like an example's input).
InputText = Annotated[Text, AfterValidator(_input_text)]


def _looks_local(value: str) -> bool:
    path = Path(value)
    if path.is_absolute() or value.startswith((".", "~")) or ".." in path.parts:
        return True
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def model_source(value: str) -> str:
    """A `student` or `training.teacher_weights` the worker may hand to `from_pretrained`: a name
    from GET /api/models, a hub id (`org/name` that is no folder here), or a local path that
    resolves (symlinks followed) inside one of ALLOWED_MODEL_DIRS, which is returned resolved."""
    settings = get_settings()
    if value in settings.students or value in settings.teachers or not _looks_local(value):
        return value
    try:
        resolved = Path(value).expanduser().resolve()
        roots = [root.resolve() for root in settings.allowed_model_dirs]
    except (OSError, RuntimeError) as exc:  # an unknown ~user, a symlink loop
        raise ValueError(f"the local path {value!r} cannot be resolved: {exc}") from None
    if any(resolved.is_relative_to(root) for root in roots):
        return str(resolved)
    allowed = ", ".join(str(root) for root in settings.allowed_model_dirs) or "none"
    raise ValueError(f"the local path {value!r} is outside ALLOWED_MODEL_DIRS ({allowed}); give a model name "
                     "from GET /api/models, a hub id (org/name) or a folder inside one of those directories")


class Example(Strict):
    """One input with its expected output."""

    input: Text = Field(min_length=1, description="What the model receives.")
    output: Text | None = Field(
        description="What the model should answer: a label, an answer, an extraction's JSON object (as JSON text), "
        "or a tool call `{\"name\", \"arguments\"}` as JSON text; for a tool-calling row that needs no call, "
        "empty or null (or the plain reply)."
    )
    tools: list[Text] | None = Field(
        None, description="Tool calling with `tools_in_prompt` only: the names of the job's tools offered with this "
        "input (all of them when left out), as a client would send them in `tools`.")

    @field_validator("output", mode="before")
    @classmethod
    def _output_text(cls, value: object) -> object:
        # An extraction's object or a call may be sent as JSON rather than as its text.
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        return "" if value is None else value

    @field_validator("input", "output")
    @classmethod
    def _bounded(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "input" and not value.strip():
            raise ValueError("must not be blank")
        limit = get_settings().max_row_chars
        if len(value) > limit:
            raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
        return value


class TrainingRequest(TrainingOptions):
    """The training options as a request gives them (`app.specs.TrainingOptions`), with
    `teacher_weights` checked like `student`. The stored spec holds plain `TrainingOptions`, so
    specs stored before these checks still load."""

    @field_validator("teacher_weights", mode="before")
    @classmethod
    def _teacher_weights_text(cls, value: object) -> object:
        return _storable_input(value)

    @field_validator("teacher_weights")
    @classmethod
    def _teacher_weights_source(cls, value: str | None) -> str | None:
        return None if value is None else model_source(value)


class JobCreate(Strict):
    """What a person asks for: a task in plain words, plus optional guidance."""

    task: Text | None = Field(
        None, description="The task in plain words, e.g. 'sort support tickets into billing, shipping, technical'. "
        "Required, except with `from_job`."
    )
    from_job: Text | None = Field(
        None, description="Train on another job's data: the id of a job whose data stages have all succeeded. Its "
        "data set (as edited so far), task and test set are copied, no teacher is asked for data, and the new job "
        "trains, evaluates and packages. Only `student`, `teacher`, `training`, `until` and `exports` may be given "
        "with it; `training` options given replace that job's, the others are kept.")
    task_type: TaskType | None = Field(None, description="Inferred by the teacher when not given.")
    labels: list[Text] | None = Field(None, description="Allowed outputs for a classification task.")
    fields: list[FieldSpec] | None = Field(
        None,
        description="The fields of an extraction answer: a list of `{name, description, type, span}` (type: string, "
        "number, integer, boolean or list of strings; `span`: the value must occur in the input, default true), the "
        "text `name:description[:type],...`, or a JSON schema of an object. Implies `task_type: extraction`; the "
        "teacher proposes fields when an extraction task names none.",
    )
    tools: list[dict[str, Any]] | None = Field(
        None,
        description="1 to 20 tools in OpenAI's function-tool format (`{\"type\": \"function\", \"function\": "
        "{name, description, parameters}}`); the student learns to call them with the tools baked in. Implies "
        "`task_type: tool_calling`, which needs them.",
    )
    tools_in_prompt: bool = Field(
        False, description="Tool calling: show the student the offered tools in a system message on every request "
        "(the documented `tools_prompt` format) instead of learning them into its weights. Each training input is "
        "offered its tool among a few others; served, it calls the tools a request sends, trained on or not. For "
        "clients that send a different tool list per request (as BFCL does).")
    qa_mode: QAMode | None = Field(
        None, description="For qa: `open_book` (each input holds a passage and its question; answers come from the "
        "passage, or are the stated refusal when it does not answer) or `closed_book` (a question alone). Asked of "
        "the teacher when not given.")
    examples: list[Example] = Field(default_factory=list, description="Seed examples that guide the teacher.")
    test_set: list[Example] = Field(
        default_factory=list, description="Held-out examples the models are scored on; never trained on."
    )
    inputs: list[InputText] = Field(
        default_factory=list,
        description="Real unlabeled inputs (e.g. production logs), as text: the teacher labels them like generated "
        "inputs (same votes and checks), curation keeps the ones it trusts in the train split (never validation; one "
        "equal to a test row is dropped, `input_in_test_set`), and generation shows a few as examples of real "
        "inputs. At most MAX_ROWS of them.")
    teacher: Text | None = Field(
        None, description="Teacher model name (see GET /api/models); the default when omitted."
    )
    student: Text | None = Field(
        None, description="Student model: a name from GET /api/models, a hub id, or a local folder inside "
        "ALLOWED_MODEL_DIRS."
    )
    num_examples: int = Field(200, gt=0, description="How many training examples the teacher should make.")
    until: Literal["data", "model"] = Field("model", description="`data` stops after the teacher stages.")
    training: TrainingRequest = Field(
        default_factory=TrainingRequest, description="Fine-tuning options."
    )
    curation: CurationOptions = Field(
        default_factory=CurationOptions,
        description="How the teacher's data is checked before training (self-consistency votes, the intent check, "
                    "per-label plans, top-up rounds, the share every label needs, seed examples as data).")
    exports: list[ExportFormat] = Field(
        list(DEFAULT_EXPORTS),
        description="The GGUF files the package stage makes, each with llama.cpp's quantizer: `f16` (half "
        "precision), `q8_0` (8-bit), `q5_k_m` and `q4_k_m` (5- and 4-bit k-quants). `f16` is always made (the others "
        "are quantized from it); duplicates are dropped and the files come in that order. Each file is scored again "
        "in llama.cpp on the rows the student was evaluated on, and the report and model card recommend the smallest "
        "whose score is within the margin of f16's. With `from_job`: the source job's exports when left out.")

    @field_validator("task")
    @classmethod
    def _task_text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        limit = get_settings().max_task_chars
        if len(value) > limit:
            raise ValueError(f"is {len(value)} characters long; the limit is {limit}")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        if info.data.get("task_type") not in (None, TaskType.CLASSIFICATION):
            raise ValueError("labels are only for classification tasks")
        labels = [label.strip() for label in value]
        if any(not label for label in labels):
            raise ValueError("labels must not be blank")
        char_limit = get_settings().max_label_chars
        for index, label in enumerate(labels):
            if len(label) > char_limit:
                raise ValueError(f"label {index} is {len(label)} characters long; the limit is {char_limit}")
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be unique")
        if len(labels) < 2:
            raise ValueError("give at least two labels")
        limit = get_settings().max_labels
        if len(labels) > limit:
            raise ValueError(f"{len(labels)} labels given; the limit is {limit}")
        return labels

    @field_validator("fields", mode="before")
    @classmethod
    def _fields_in_any_form(cls, value: object) -> object:
        # The text and JSON-schema forms become the list form here, so a mistake gets one error.
        if isinstance(value, str):
            return parse_fields_text(storable_text(value))
        if isinstance(value, dict):
            return fields_from_json_schema(value)
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: list[FieldSpec] | None) -> list[FieldSpec] | None:
        if value is None:
            return None
        names = [f.name for f in value]
        if not names:
            raise ValueError("give at least one field, or leave `fields` out for the teacher to propose them")
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        try:
            return validate_tools(value)
        except ToolsError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: list[str]) -> list[str]:
        limit = get_settings().max_rows
        if len(value) > limit:
            raise ValueError(f"{len(value)} inputs given; the limit is {limit}")
        return value

    @field_validator("examples", "test_set")
    @classmethod
    def _rows(cls, value: list[Example], info: ValidationInfo) -> list[Example]:
        limit = get_settings().max_rows
        if len(value) > limit:
            raise ValueError(f"{len(value)} rows given; the limit is {limit}")
        labels = info.data.get("labels")
        if labels:
            problems: list[RowProblem] = [
                ((index, "output"), f"{row.output!r} is not one of the labels {labels}")
                for index, row in enumerate(value) if (row.output or "").strip() not in labels]
            if problems:
                raise row_errors(problems)
        return value

    @model_validator(mode="after")
    def _shapes_fit_task_type(self) -> JobCreate:
        shaped = {"fields": (self.fields, TaskType.EXTRACTION), "tools": (self.tools, TaskType.TOOL_CALLING)}
        for name, (given, task_type) in shaped.items():
            if given is None:
                continue
            if self.task_type not in (None, task_type):
                raise ValueError(f"`{name}` are for {task_type.value} tasks, not {self.task_type.value}")
            self.task_type = task_type
        if self.qa_mode is not None:
            if self.task_type not in (None, TaskType.QA):
                raise ValueError(f"`qa_mode` is for qa tasks, not {self.task_type.value}")
            self.task_type = TaskType.QA
        if self.labels is not None and self.task_type not in (None, TaskType.CLASSIFICATION):
            raise ValueError(f"labels are only for classification tasks, not {self.task_type.value}")
        if self.task_type == TaskType.TOOL_CALLING and not self.tools:
            raise ValueError("a tool_calling task needs `tools`: the functions the student may call")
        if self.tools_in_prompt and not self.tools:
            raise ValueError("`tools_in_prompt` is for tool_calling tasks: give their `tools`")
        problems: list[RowProblem] = []
        for where in ("examples", "test_set"):
            for index, row in enumerate(getattr(self, where)):
                problem = self._row_problem(row.output or "")
                if problem:
                    problems.append(((where, index, "output"), problem))
                problem = self._row_tools_problem(row)
                if problem:
                    problems.append(((where, index, "tools"), problem))
        if problems:
            raise row_errors(problems)
        return self

    def _row_tools_problem(self, row: Example) -> str | None:
        """Why a row's offered `tools` do not fit the job, or None."""
        if row.tools is None:
            return None
        if not self.tools_in_prompt:
            return "tools offered per row need `tools_in_prompt: true`"
        known = {str(t["function"]["name"]) for t in self.tools or []}
        unknown = [name for name in row.tools if name not in known]
        if unknown:
            return f"{unknown} are not among the job's tools ({', '.join(sorted(known))})"
        if len(set(row.tools)) != len(row.tools):
            return "names a tool twice"
        if row.output and row.output.strip().startswith("{"):
            called = check_call(row.output, self.tools or []).call
            if called is not None and called["name"] not in row.tools:
                return f"the expected call of {called['name']!r} is not among the offered tools"
        return None

    def _row_problem(self, output: str) -> str | None:
        """Why an expected output does not fit the task type, or None."""
        if self.task_type == TaskType.TOOL_CALLING:
            text = output.strip()
            if not text or text == "null" or not text.startswith("{"):
                return None  # no call expected (a plain reply, or nothing)
            checked = check_call(text, self.tools)
            return "; ".join(checked.problems) or None
        if not output.strip():
            return "must not be blank"
        if self.task_type == TaskType.EXTRACTION:
            try:
                parsed = json.loads(output)
            except ValueError:
                return "must be the JSON object of the fields (as JSON text)"
            if not isinstance(parsed, dict):
                return "must be the JSON object of the fields (as JSON text)"
            unknown = sorted(set(parsed) - {f.name for f in self.fields}) if isinstance(self.fields, list) else []
            if unknown:
                return f"unknown fields {unknown}"
        return None

    @field_validator("num_examples")
    @classmethod
    def _num_examples(cls, value: int) -> int:
        limit = get_settings().max_num_examples
        if value > limit:
            raise ValueError(f"is {value}; the limit is {limit}")
        return value

    @field_validator("teacher")
    @classmethod
    def _known_teacher(cls, value: str | None) -> str | None:
        if value is not None and value not in get_settings().teachers:
            known = ", ".join(get_settings().teachers)
            raise ValueError(f"unknown teacher {value!r}; available: {known}")
        return value

    @field_validator("student")
    @classmethod
    def _student_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or len(value) > 512):
            raise ValueError("must be a model name, local path or hub id of at most 512 characters")
        return None if value is None else model_source(value)

    @model_validator(mode="after")
    def _task_or_source(self) -> JobCreate:
        if self.from_job is None:
            if self.task is None:
                raise row_errors([(("task",), "Field required: the task in plain words (or `from_job` to train on "
                                              "another job's data)")])
            return self
        fixed = sorted(self.model_fields_set - RETRAIN_FIELDS)
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot be given with `from_job`: the job's data, task and test set "
                             f"are copied as they are (only {', '.join(sorted(RETRAIN_FIELDS - {'from_job'}))} may "
                             "change)")
        return self

    def retrain_spec(self, source: dict[str, Any], revision: int) -> JobSpec:
        """The spec of a job trained on `source`'s data (`from_job`): the source's spec with this
        body's student, teacher, `until`, the training options it gives and its exports if given."""
        training = {**source.get("training", {}), **self.training.model_dump(mode="json", exclude_unset=True)}
        exports = {"exports": self.exports} if "exports" in self.model_fields_set else {}
        return JobSpec.model_validate({
            **source, "training": training, "until": self.until, "from_job": self.from_job,
            "data_revision": revision, "student": self.student or source["student"],
            "teacher": self.teacher or source["teacher"], **exports})

    @model_validator(mode="after")
    def _spec_size(self) -> JobCreate:
        if self.from_job is not None:
            return self
        # Checked on the spec as stored: a huge spec makes every read of the job slow.
        size = len(self.to_spec().model_dump_json().encode())
        limit = get_settings().max_spec_bytes
        if size > limit:
            raise ValueError(f"the job is {size} bytes of JSON; the limit is {limit} (MAX_SPEC_BYTES): "
                             "send fewer or shorter examples and test rows")
        return self

    def to_spec(self) -> JobSpec:
        """The validated request with the service's defaults filled in (stored on the job as JSON)."""
        settings = get_settings()
        return JobSpec.model_validate({**self.model_dump(mode="json"),
                                       "fields": self.fields or [], "tools": self.tools or [],
                                       "teacher": self.teacher or settings.teacher_model,
                                       "student": self.student or settings.student_model})


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. `not_found`, `validation_error`.")
    message: str = Field(description="What went wrong, for people.")
    fields: list[dict[str, str]] | None = Field(
        None, description="For validation errors: each offending field and why."
    )


class ErrorResponse(BaseModel):
    """The one shape of every error answer."""

    error: ErrorBody


class JobError(BaseModel):
    code: str
    message: str


class StagePublic(BaseModel):
    name: str
    status: str
    progress: float
    done: int | None = None
    total: int | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    eta_seconds: float | None = Field(
        None, description="For a running stage: seconds left if it goes on at the pace it has had so far."
    )
    items_per_min: float | None = Field(
        None, description="For a running stage: items finished per minute in this run (answers, training steps), "
        "not counting answers kept from an earlier run; null until one has finished."
    )


class JobSummary(BaseModel):
    id: uuid.UUID
    owner: str
    task: str
    status: str
    stage: str | None
    progress: float
    error: JobError | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobPublic(JobSummary):
    spec: dict[str, Any]
    plan: dict[str, Any] | None = Field(None, description="The task spec the teacher planned (after the plan stage).")
    warnings: list[dict[str, str]] = Field(
        default_factory=list, description="Problems found on the way, e.g. a weak teacher."
    )
    stages: list[StagePublic]
    queue_position: int | None = Field(
        None, ge=1,
        description="For a queued job waiting for a default worker: its place in line (1: it starts next), with "
        "the slots shared fairly between owners. Null otherwise.",
    )
    expected_start_at: datetime | None = Field(
        None,
        description="For a queued job waiting for a default worker: when it is expected to start, from the running "
        "jobs' stage ETAs and recent runs' stage times. Null when not waiting or not known yet.",
    )


class JobsPublic(BaseModel):
    items: list[JobSummary]
    total: int


class ArtifactPublic(BaseModel):
    name: str
    size: int
    sha256: str
    url: str


class ArtifactsPublic(BaseModel):
    items: list[ArtifactPublic]


class ReportPublic(BaseModel):
    task_type: TaskType | None = Field(
        None, description="The task's type (planned, or as asked): which scores each model's entry carries beside "
        "`accuracy` and `n`.")
    teacher: dict[str, Any] | None = Field(
        None, description="The teacher scored on the test set: accuracy, n, per-label, confusion."
    )
    base_student: dict[str, Any] | None = Field(None, description="The untuned student, scored the same way.")
    student: dict[str, Any] | None = Field(None, description="The tuned student, scored the same way.")
    verdict: str | None = Field(
        None, description="`deploy` or `retune`, once the student is evaluated: deploy when the tuned student's 95% "
        "interval reaches the teacher's accuracy or it closed at least 0.8 of the gap from its untuned self to the "
        "teacher.")
    verdict_reason: str | None = Field(
        None, description="Why: `reaches_teacher`, `closed_gap` or `behind_teacher`.")
    closed: float | None = Field(
        None, description="(tuned - untuned) / (teacher - untuned): the share of the gap tuning closed (above 1: the "
        "student beat its teacher); null when the teacher is not ahead of the untuned student.")
    ratio: float | None = Field(None, description="Tuned student's accuracy over the teacher's.")
    reference: str | None = Field(None, description="What the models were scored on: `test_set` or `validation`.")
    exports: list[dict[str, Any]] | None = Field(
        None, description="Once packaged: each exported GGUF file run in llama.cpp on the same rows by the same rule: "
        "name, export (f16, q8_0, ...), accuracy with `accuracy_ci95`, `change` against the tuned student's free "
        "answers in transformers, `same_answers` (share of identical answers), `tokens_per_second`, `latency_ms`, "
        "`size_bytes`, and `flagged` when it scores more than EXPORT_SCORE_MARGIN below the f16 file.")
    recommended_export: str | None = Field(
        None, description="The smallest exported file within the margin of the f16 file's score (the Modelfile "
        "loads it).")
    chat_format_check: dict[str, Any] | None = Field(
        None, description="The prompt llama.cpp builds from the GGUF's chat template and Ollama's from the Modelfile, "
        "each against the tokenizer's for the same messages (how many equal, where the first differs), the GGUF's "
        "token ids, whether the stop strings end an answer, and `ok`.")
    costs: dict[str, Any] | None = Field(
        None, description="Cost per million requests of the teacher, the tuned student and each export, from their "
        "measured median latency (one request at a time) and the device-hour price settings, with sizes in GB.")
    warnings: list[dict[str, str]] = Field(default_factory=list)


class ExamplesPage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Rows: index, input, output, split, deleted, bucket, label_probs (classification); rows a "
                    "person changed have `edited` and the `teacher_output`, added ones `source: person`."
    )
    total: int = Field(description="Rows that match the filter.")
    label_counts: dict[str, int] = Field(
        description="Rows per label over the whole data set (classification only; else empty)."
    )
    split_counts: dict[str, int]
    dropped: dict[str, int] = Field(description="Rows curation removed, by reason.")
    input_rows: int | None = Field(None, description="Labeled rows curation started from.")
    revision: int = Field(0, description="The data set's revision: 0 as curated, one more per saved edit.")
    editable: bool = Field(False, description="Whether a person may edit the data set now (POST .../data/edits).")
    not_editable_reason: str | None = Field(None, description="Why not, when not.")


class PredictionsPage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Rows: index, input, expected, teacher, base_student, student, student_text, and correct "
                    "(per model, right by the job's scoring rule)."
    )
    total: int = Field(description="Rows that match the filter.")


class ModelsPublic(BaseModel):
    teachers: list[str]
    students: list[str]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    broker: Literal["ok", "error"]
    teacher: Literal["ok", "error"]
    version: str


#: An owner name in a request.
OwnerName = Annotated[str, Field(pattern=OWNER_PATTERN,
                                 description="Who the key acts for: letters, digits and `._@-`, at most 128.",
                                 examples=["alice"])]


class KeyCreate(Strict):
    """A new API key: for whom, and whether it may manage everyone's jobs and keys."""

    owner: OwnerName
    admin: StrictBool = Field(False, description="An admin key sees and manages every owner's jobs and keys.")
    name: Text = Field("", max_length=128, description="A note to tell keys apart, e.g. where it is used.")


class KeyPublic(BaseModel):
    """An API key as listed: never the key itself, only its first characters."""

    id: int
    owner: str
    name: str
    admin: bool
    prefix: str = Field(description="The key's first characters, e.g. `vt_Ab12Cd34`.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    """A key just made. `key` is shown this once; only its hash is stored."""

    key: str


class KeysPublic(BaseModel):
    items: list[KeyPublic]


class SessionCreate(Strict):
    """Sign the dashboard in: the key is checked and kept in an HttpOnly cookie."""

    key: Text = Field(min_length=1, max_length=256)


class Me(BaseModel):
    """Who the key of this request acts for."""

    owner: str
    admin: bool
    auth: bool = Field(description="False when the service runs with AUTH=off (everyone is the admin `local`).")
