"""Background jobs as the API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.models import JobStatus


class JobError(BaseModel):
    """One recorded failure: an example the LLM could not answer, or the job's own failure."""

    kind: str = Field(description="An LLM error kind (rate_limited, unparseable, ...) or `job`.")
    message: str
    example_id: str | None = Field(default=None, description="The example's id, if it has one.")
    text: str | None = Field(default=None, description="The start of the example's text.")
    sample_index: int | None = None
    status_code: int | None = None
    raw_excerpt: str | None = Field(default=None, description="The start of the raw answer.")
    attempt: int | None = Field(default=None, description="Which run of the job saw it.")


class JobOut(BaseModel):
    id: str
    kind: str
    task: str | None = Field(description="The task's name.")
    status: JobStatus
    total: int = Field(description="Examples to ask about (those lacking an answer).")
    done: int = Field(description="Examples processed, including failed ones.")
    failed: int = Field(description="Processed examples still lacking an answer for some sample.")
    errors: list[JobError] = Field(description="The first errors (at most 20).")
    cancel_requested: bool
    attempts: int = Field(description="How many times a worker claimed the job.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
