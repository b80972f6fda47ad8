"""The one settings object of the service, read from ``VERBCAL_*`` environment variables."""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.llm.policy import EndpointPolicy

ENV_PREFIX = "VERBCAL_"


class Settings(BaseSettings):
    """Service configuration. Every field is set by the environment variable ``VERBCAL_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=None, extra="ignore")

    database_url: str = Field(
        default="sqlite:///./verbcal.db",
        description="SQLAlchemy URL: a SQLite file (default) or postgresql+psycopg://...",
    )
    secret_key: str = Field(
        default="",
        description="Signs dashboard session cookies. Empty: a random key per process "
        "(sessions do not survive a restart).",
    )
    embedded_worker: bool | None = Field(
        default=None,
        description="Run a job worker inside `verbcal serve`. Default: on for SQLite, off for "
        "PostgreSQL (run `verbcal worker` processes instead).",
    )
    max_text_length: int = Field(default=20_000, ge=1, description="Longest accepted text.")
    max_batch_size: int = Field(default=1_000, ge=1, description="Most items in one batch call.")
    max_upload_rows: int = Field(default=100_000, ge=1, description="Most rows in one import.")
    max_upload_bytes: int = Field(
        default=64 * 2**20,
        ge=1,
        description="Largest body of an import (`POST /tasks/{name}/examples` and "
        "`/predictions`: JSON, CSV, JSONL or multipart; the dashboard's examples upload), in "
        "bytes; larger is a 413.",
    )
    max_body_bytes: int = Field(
        default=16 * 2**20,
        ge=1,
        description="Largest body of any other request (e.g. `/calibrate/batch`, dashboard "
        "forms), in bytes; larger is a 413.",
    )
    reasoning_max_chars: int = Field(
        default=2_000,
        ge=0,
        description="Longest model reasoning returned by /calibrate (`llm.reasoning`); the "
        "stored answer keeps all of it.",
    )
    min_fit_examples: int = Field(
        default=20, ge=2, description="Fewest labelled distributions a fit accepts."
    )
    monitoring_window: int = Field(
        default=500, ge=1, description="How many recent labelled requests monitoring uses."
    )
    drift_ece_margin: float = Field(
        default=0.05,
        ge=0,
        description="Monitoring flags drift when the live ECE exceeds the fit's held-out ECE "
        "by more than this.",
    )
    prior_window: int = Field(
        default=1_000,
        ge=1,
        description='How many recent /calibrate requests a task with `prior: "estimate"` '
        "estimates its live class prior from (EM on calibrated probabilities).",
    )
    prior_min_requests: int = Field(
        default=100,
        ge=1,
        description="Fewest recent requests before an estimated prior is applied.",
    )
    prior_refresh_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds an estimated live prior is reused before it is estimated again "
        "(0: on every request).",
    )
    job_lease_s: float = Field(
        default=60.0, gt=0, description="A running job whose heartbeat is older is reclaimed."
    )
    worker_poll_s: float = Field(default=1.0, gt=0, description="Worker idle poll interval.")
    job_batch_size: int = Field(
        default=32, ge=1, description="Examples a worker asks about between progress commits."
    )
    db_threads: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Database slots of an API process: requests doing database work at once "
        "(more only contend for the GIL and SQLite's write lock). Each slot holds one pooled "
        "connection at most.",
    )
    db_pool_spare: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Pooled connections beyond `db_threads`, for the embedded job worker and "
        "readiness probes. An API process holds at most `db_threads + db_pool_spare` "
        "connections.",
    )
    db_queue: int = Field(
        default=128,
        ge=0,
        le=100_000,
        description="Requests an API process lets wait for a database slot; more are answered "
        "at once with 503 `overloaded` and `Retry-After: 1`.",
    )
    auth_cache_ttl_s: float = Field(
        default=10.0,
        ge=0,
        description="Seconds an authenticated API key is remembered in-process; a revoked key "
        "stops working within this time. 0: look every key up on every request.",
    )
    allowed_llm_key_envs: str = Field(
        default="OPENAI_API_KEY,VERBCAL_LLM_KEY_*",
        description="Comma-separated environment variables a task's `llm.api_key_env` may name; "
        "`NAME_*` allows a prefix. verbcal's own VERBCAL_<SETTING> variables never.",
    )
    allowed_llm_hosts: str = Field(
        default="",
        description="Comma-separated hosts a task's `llm.base_url` may point at (`*.example.com` "
        "for subdomains). Empty: any host.",
    )
    llm_allow_link_local: bool = Field(
        default=False,
        description="Allow LLM hosts at link-local or cloud-metadata addresses (169.254.0.0/16, "
        "fe80::/10, fd00:ec2::254).",
    )
    login_attempts_per_minute: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed dashboard logins a client address may make per minute (stored in "
        "the database: one count for every API process); more are answered 429 with "
        "Retry-After.",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Mark the dashboard cookie Secure. Unset: when the request arrived over "
        "HTTPS (as told by a trusted proxy, see `forwarded_allow_ips`); true behind a "
        "TLS-terminating proxy.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses of proxies whose X-Forwarded-For / "
        "X-Forwarded-Proto headers `verbcal serve` honours (`*`: any; only behind a proxy "
        "that overwrites them).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_json: bool = Field(default=True, description="Structured JSON logs.")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="If set, GET /metrics requires `Authorization: Bearer <token>`. Unset: "
        "/metrics is open, so scrape it on an internal network only.",
    )

    @property
    def db_pool_size(self) -> int:
        """Connections an API process pools: one per database slot, plus the spare ones."""
        return self.db_threads + self.db_pool_spare

    @cached_property
    def llm_policy(self) -> EndpointPolicy:
        """The operator's limits on task LLM configs (see ``app.llm.policy``)."""
        return EndpointPolicy(
            key_env_patterns=_comma_list(self.allowed_llm_key_envs),
            forbidden_key_envs=frozenset(
                f"{ENV_PREFIX}{name}".upper() for name in type(self).model_fields
            ),
            allowed_hosts=_comma_list(self.allowed_llm_hosts),
            allow_link_local=self.llm_allow_link_local,
        )


def _comma_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@lru_cache
def get_settings() -> Settings:
    return Settings()
