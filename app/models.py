"""SQLAlchemy 2 ORM models. The schema is created and changed only by Alembic migrations."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    labels: Mapped[list[Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    prompt_template: Mapped[str | None] = mapped_column(Text, nullable=True)
    llm: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # None, "estimate" or {label: share}: the target class prior (app.services.prior).
    prior: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    calibrations: Mapped[list[Calibration]] = relationship(
        back_populates="task", passive_deletes=True, order_by="Calibration.version"
    )


class Example(Base):
    """A labelled (or, for imported predictions, possibly unlabelled) text of a task."""

    __tablename__ = "examples"
    __table_args__ = (
        UniqueConstraint("task_id", "text_hash", name="uq_examples_task_text_hash"),
        UniqueConstraint("task_id", "external_id", name="uq_examples_task_external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# What identifies one stored answer (the unique key of `elicitations`).
ANSWER_KEY_COLUMNS = (
    "task_id",
    "text_hash",
    "base_url",
    "model",
    "prompt_version",
    "params_fingerprint",
    "sample_index",
)


class Elicitation(Base):
    """One stored answer: an LLM sample, or a distribution imported from elsewhere.

    Keyed by (task, text hash, base_url, model, prompt version, params, sample index) so that
    re-running never pays twice for an answer already stored. Imported distributions use the
    source ``imported`` with ``base_url = model = prompt_version = params = "import"``.
    """

    __tablename__ = "elicitations"
    __table_args__ = (
        UniqueConstraint(*ANSWER_KEY_COLUMNS, name="uq_elicitations_answer_key"),
        Index("ix_elicitations_task_config", "task_id", "base_url", "model", "prompt_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    example_id: Mapped[int] = mapped_column(
        ForeignKey("examples.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))  # "llm" | "imported"
    text_hash: Mapped[str] = mapped_column(String(64))
    base_url: Mapped[str] = mapped_column(String(500))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str] = mapped_column(String(80))
    params_fingerprint: Mapped[str] = mapped_column(String(80))
    sample_index: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "repaired" | "failed"
    probabilities: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    raw_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    repairs: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reasoning: Mapped[str | None] = mapped_column(Text, nullable=True)
    answer_agrees: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    response_model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Calibration(Base):
    """A fitted calibrator, versioned per task. The database allows one active per task."""

    __tablename__ = "calibrations"
    __table_args__ = (
        UniqueConstraint("task_id", "version", name="uq_calibrations_task_version"),
        Index(
            "uq_calibrations_one_active_per_task",
            "task_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32))
    objective: Mapped[str | None] = mapped_column(String(32), nullable=True)
    temperature: Mapped[float | None] = mapped_column(Float, nullable=True)
    eps: Mapped[float | None] = mapped_column(Float, nullable=True)
    calibrator: Mapped[dict[str, Any]] = mapped_column(JSON)
    fit_request: Mapped[dict[str, Any]] = mapped_column(JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    conventions: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(nullable=True)

    task: Mapped[Task] = relationship(back_populates="calibrations")

    def held_out_ece(self) -> tuple[float | None, float | None]:
        """The held-out ECE of the raw and of the calibrated distributions, stored at fit time."""
        return self.metrics.get("before", {}).get("ece"), self.metrics.get("after", {}).get("ece")


class CalibrationRequest(Base):
    """One ``POST /calibrate`` result; ``feedback_label`` is the true label given later."""

    __tablename__ = "calibration_requests"
    __table_args__ = (
        Index("ix_calibration_requests_task_feedback", "task_id", "feedback_at"),
        # Recent traffic of a task (the estimated live prior).
        Index("ix_calibration_requests_task_created", "task_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    calibration_id: Mapped[int | None] = mapped_column(
        ForeignKey("calibrations.id", ondelete="SET NULL"), nullable=True
    )
    text_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    raw_probabilities: Mapped[list[Any]] = mapped_column(JSON)
    probabilities: Mapped[list[Any]] = mapped_column(JSON)
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    llm: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    feedback_label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[str, ...] = get_args(JobStatus)
ACTIVE_JOB_STATUSES = ("queued", "running")
FINISHED_JOB_STATUSES = ("succeeded", "failed", "cancelled")
_ACTIVE_JOB_SQL = "status IN (" + ", ".join(f"'{s}'" for s in ACTIVE_JOB_STATUSES) + ")"


class Job(Base):
    """Background work (elicitation). Claimed by workers; a stale heartbeat means reclaimable."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index(
            "uq_jobs_one_active_per_task_kind",
            "task_id",
            "kind",
            unique=True,
            sqlite_where=text(_ACTIVE_JOB_SQL),
            postgresql_where=text(_ACTIVE_JOB_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_uuid)
    kind: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ApiKey(Base):
    """An API key, stored as a SHA-256 hash; ``prefix`` identifies it in listings and logs."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))  # "admin" | "app"
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class EndedDashboardSession(Base):
    """A dashboard session ended by logout: its cookie no longer logs anyone in, in any process.

    Kept (by the SHA-256 of the session id) until the cookie would have expired anyway.
    """

    __tablename__ = "ended_dashboard_sessions"

    sid_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class FailedLogin(Base):
    """A failed dashboard login by a client address. The login rate limit counts these, so
    that every API process (``--workers N``) and a restarted one apply the same limit."""

    __tablename__ = "failed_logins"
    __table_args__ = (Index("ix_failed_logins_address_failed_at", "address", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column()
