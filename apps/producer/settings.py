"""Producer settings from the environment (same Redis contract as the worker)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The worker's task name (apps/worker/settings.py holds the same string; a test
#: checks they agree). The producer never imports the worker package.
TASK_NAME = "users.process"


class ProducerSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, env_ignore_empty=True)

    redis_host: str = "localhost"
    redis_port: int = Field(6379, ge=1, le=65535)
    redis_password: SecretStr | None = None
    redis_db: int = Field(0, ge=0)
    redis_tls: bool = False
    redis_ca_file: Path | None = None
    celery_queue: str = Field("celery", min_length=1)

    producer_heartbeat_file: Path = Path("/tmp/producer-heartbeat.json")
    producer_heartbeat_max_age: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> "ProducerSettings":
        if self.redis_ca_file is not None and not self.redis_ca_file.is_file():
            raise ValueError(f"REDIS_CA_FILE {str(self.redis_ca_file)!r} is not a readable file")
        return self

    @property
    def redis_url(self) -> str:
        """Broker URL without any TLS option (those go to ``broker_use_ssl``)."""
        scheme = "rediss" if self.redis_tls else "redis"
        auth = f":{quote(self.redis_password.get_secret_value(), safe='')}@" if self.redis_password else ""
        return f"{scheme}://{auth}{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def ssl_options(self) -> dict | None:
        import ssl

        if not self.redis_tls:
            return None
        opts: dict = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}
        if self.redis_ca_file is not None:
            opts["ssl_ca_certs"] = str(self.redis_ca_file)
        return opts
