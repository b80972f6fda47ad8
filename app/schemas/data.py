"""Labelled examples and imported predictions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.common import EXAMPLE_PROBABILITIES, Label, Probability, RequestModel, Text


class ExampleIn(RequestModel):
    id: str | None = Field(default=None, min_length=1, max_length=200, description="Your id.")
    text: Text
    label: Label


class ExamplesIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"examples": [{"id": "t-1", "text": "The app crashes on login.", "label": "bug"}]}
            ]
        }
    )

    examples: list[ExampleIn] = Field(min_length=1)


class ImportResult(BaseModel):
    received: int
    inserted: int
    updated: int
    unchanged: int


class PredictionIn(RequestModel):
    text: Text | None = None
    example_id: str | None = Field(default=None, min_length=1, max_length=200)
    label: Label | None = Field(default=None, description="The true label, if known.")
    probabilities: dict[str, Probability] = Field(description="One probability per task label.")

    @model_validator(mode="after")
    def _one_reference(self) -> PredictionIn:
        if (self.text is None) == (self.example_id is None):
            raise ValueError("give exactly one of `text` or `example_id`")
        return self


class PredictionsIn(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "text": "Please refund my second payment.",
                            "label": "billing",
                            "probabilities": EXAMPLE_PROBABILITIES,
                        }
                    ]
                }
            ]
        }
    )

    items: list[PredictionIn] = Field(min_length=1)


class ExampleOut(BaseModel):
    id: str | None
    text: str
    label: str | None
