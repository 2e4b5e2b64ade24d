"""Settings from the environment (docs/contract.md); every field is overridable in tests.

An empty variable counts as unset. A bad value stops the app at start-up with an error
that names the variable and the rule, never the value (it may be a secret).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from apps.common.redis_settings import RedisSettings

SAMPLE_DATASET_DIR = Path(__file__).resolve().parent / "dataset"

PositiveSeconds = Annotated[float, Field(gt=0)]


class Settings(RedisSettings):
    """One field per environment variable (the name upper-cased): ``redis_host`` is ``REDIS_HOST``.
    The Redis endpoint (``REDIS_HOST``, ``_PORT``, ``_PASSWORD``, ``_TLS``, ``_DB``, ``_CA_FILE``)
    is the one every app reads (apps/common/redis_settings.py, docs/contract.md)."""

    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True,
                                      hide_input_in_errors=True)

    # Optional read path (replica sidecar): cache reads go there; writes and the lock go to the primary.
    redis_read_host: str | None = None
    redis_read_port: int | None = Field(None, ge=1, le=65535)
    """Defaults to ``REDIS_PORT`` when only ``REDIS_READ_HOST`` is set."""

    # Fail fast when Redis is down.
    redis_connect_timeout_seconds: PositiveSeconds = 1.0
    redis_socket_timeout_seconds: PositiveSeconds = 1.0
    redis_max_connections: int = Field(64, ge=1)

    # Dataset.
    dataset_dir: Path = SAMPLE_DATASET_DIR
    dataset_load_delay_seconds: float = Field(0.0, ge=0)
    """Artificial delay added to every dataset read (simulates a slow source in demos and tests)."""
    dataset_load_timeout_seconds: PositiveSeconds | None = None
    """Time bound of a dataset read (default: 0.8 x ``LOCK_TIMEOUT_SECONDS``, so a bounded
    load always ends while its loader still holds the lock). Must be below it."""
    dataset_retry_seconds: PositiveSeconds = 5.0
    """After an unusable dataset or a read over its bound: how soon this process tries again."""

    # Cache.
    cache_ttl_seconds: PositiveSeconds = 3600.0
    cache_ttl_jitter_ratio: float = Field(0.1, ge=0, le=1)
    """Each key lives ``CACHE_TTL_SECONDS * (1 + U(0, ratio))`` so keys do not expire together."""
    cache_key_prefix: str = Field("cache_api:v1", min_length=1)
    local_cache_ttl_seconds: float = Field(1.0, ge=0)
    """Staleness bound of the in-process cache in front of Redis; 0 disables it."""
    local_cache_max_entries: int = Field(1024, ge=1)
    hot_path: bool = True
    """Serve plain reads found in the in-process cache before FastAPI routing (see hotpath.py)."""

    # Stampede protection.
    lock_timeout_seconds: PositiveSeconds = 10.0
    """Life of the loader lock: a loader that dies blocks the others at most this long."""
    fill_wait_seconds: PositiveSeconds = 15.0
    """How long a request waits for another loader's value before answering 503."""
    redis_write_retry_seconds: PositiveSeconds = 5.0
    """While Redis refuses writes (full, or read-only): how often this pod tries to write the
    dataset it serves from memory again (write_refusals.py)."""

    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value

    @model_validator(mode="after")
    def _read_port_default(self) -> Settings:
        if self.redis_read_host is not None and self.redis_read_port is None:
            object.__setattr__(self, "redis_read_port", self.redis_port)
        return self

    @model_validator(mode="after")
    def _load_ends_before_its_lock(self) -> Settings:
        if (self.dataset_load_timeout_seconds is not None
                and self.dataset_load_timeout_seconds >= self.lock_timeout_seconds):
            raise ValueError("DATASET_LOAD_TIMEOUT_SECONDS must be below LOCK_TIMEOUT_SECONDS")
        return self

    @property
    def effective_dataset_load_timeout(self) -> float:
        if self.dataset_load_timeout_seconds is not None:
            return self.dataset_load_timeout_seconds
        return 0.8 * self.lock_timeout_seconds

    def summary(self) -> dict[str, object]:
        """What is safe to log: everything but the password (only whether one is set)."""
        data = self.model_dump(exclude={"redis_password"}, mode="json")
        data["redis_password_set"] = self.redis_password is not None
        return data


class SettingsError(Exception):
    """The environment is invalid: one line per problem, naming the variable, never its value."""


def load_settings() -> Settings:
    """``Settings()`` from the environment, or :class:`SettingsError` with a readable message."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            name = ".".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("invalid cache API environment: " + "; ".join(problems)) from None
