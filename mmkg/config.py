"""Settings from the environment (pydantic-settings): where the store is, Neo4j, uploads."""
from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_store_path() -> Path:
    """The user's data directory, e.g. ~/.local/share/mmkg/store on Linux."""
    return Path(user_data_dir("mmkg", appauthor=False)) / "store"


class Settings(BaseSettings):
    """`MMKG_*` environment variables."""

    model_config = SettingsConfigDict(env_prefix="MMKG_", extra="ignore")

    store: Path = Field(default_factory=default_store_path, description="folder of the embedded store")
    write_wait_s: float = Field(default=0.0, ge=0, description="how long a load waits for another process's "
                                "load of the same embedded store before it is refused")
    upload_token: SecretStr | None = Field(default=None, description="bearer token; uploads are off without one")
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, description="largest accepted upload")
    cypher_timeout_s: float = Field(default=10.0, gt=0, description="time limit of ad-hoc Cypher over HTTP; the "
                                    "worker is killed 1 s after it")
    cypher_max_rows: int = Field(default=10_000, ge=1, description="row limit of ad-hoc Cypher over HTTP")
    cypher_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024,
                                  description="size limit of an ad-hoc Cypher result's rows (JSON bytes)")
    cypher_max_memory_mb: int = Field(default=1024, ge=64, description="memory an ad-hoc Cypher worker may "
                                      "allocate on top of its baseline (address-space limit)")
    cypher_buffer_pool_mb: int = Field(default=256, ge=16, description="LadybugDB buffer pool of each worker")
    cypher_max_chars: int = Field(default=20_000, ge=100, description="longest ad-hoc Cypher statement")
    cypher_workers: int = Field(default=2, ge=1, description="sandboxed worker processes for ad-hoc Cypher")
    cypher_per_client: int = Field(default=1, ge=1, description="ad-hoc queries one client address may run at once")
    cypher_token: SecretStr | None = Field(default=None, description="bearer token for POST /api/cypher; "
                                           "required when the server listens on a non-loopback address")
    allowed_hosts: list[str] = Field(default_factory=lambda: ["localhost", "127.0.0.1", "::1", "[::1]"],
                                     description="Host header values the server answers (DNS-rebinding guard); "
                                                 "JSON list, e.g. MMKG_ALLOWED_HOSTS='[\"kg.example.org\"]'")


class Neo4jSettings(BaseSettings):
    """`NEO4J_*` environment variables; a URI selects the Neo4j store."""

    model_config = SettingsConfigDict(env_prefix="NEO4J_", extra="ignore")

    uri: str | None = None
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    database: str = "neo4j"
