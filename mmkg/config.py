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
    cypher_timeout_s: float = Field(default=10.0, description="time limit of ad-hoc Cypher over HTTP")
    cypher_max_rows: int = Field(default=10_000, description="row limit of ad-hoc Cypher over HTTP")


class Neo4jSettings(BaseSettings):
    """`NEO4J_*` environment variables; a URI selects the Neo4j store."""

    model_config = SettingsConfigDict(env_prefix="NEO4J_", extra="ignore")

    uri: str | None = None
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    database: str = "neo4j"
