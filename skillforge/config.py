"""Configuration: defaults, then `skillforge.toml`, then `SKILLFORGE_*` variables, then flags.

Every path is resolved against the directory the configuration was read in (the config
file's folder, else the current directory), so `make run` in a checkout uses `./var`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError
from .stores import is_postgres, safe_url

CONFIG_FILE = "skillforge.toml"
ENV_PREFIX = "SKILLFORGE_"


class Config(BaseModel):
    """Where things live and how often the evolver runs."""

    model_config = ConfigDict(extra="forbid")

    inbox: Path = Field(
        Path("trajectories"),
        description="Folder agents append *.jsonl to (or write SWE-agent run files in).",
    )
    home: Path = Field(Path("var"), description="State folder: store, library, proposals.")
    db: str | None = Field(
        None,
        repr=False,  # a URL may carry a password
        description="The store: a SQLite file (default HOME/skillforge.db), or a"
        " postgresql://USER@HOST/DB URL several hosts share (password: PGPASSWORD or ~/.pgpass).",
    )
    library: Path | None = Field(None, description="Library working copy (default HOME/library).")
    remote: str | None = Field(None, description="Library remote (default HOME/library.git).")
    seed: Path | None = Field(Path("skills"), description="Skills a new library starts from.")
    evolve_every_minutes: float = Field(15.0, gt=0, description="Cycle interval.")
    evolve_after: int = Field(50, ge=1, description="New trajectories that start a cycle early.")
    lead_cycles: bool = Field(
        True,
        description="Whether this daemon may lead the store's cycles; false for an intake-only"
        " host of several sharing one PostgreSQL store.",
    )
    sweep_seconds: float = Field(5.0, gt=0, description="Full inbox rescan interval.")
    polling: bool = Field(False, description="Poll the inbox (NFS/SMB) instead of inotify.")
    max_line_bytes: int = Field(8 << 20, ge=1024, description="Longer lines are quarantined.")
    min_runs: int = Field(4, ge=1, description="Runs a cluster needs before it becomes a skill.")
    min_successes: int = Field(2, ge=1, description="Successful runs a new skill needs.")
    unused_days: float = Field(
        90,
        ge=0,
        description="A skillforge skill no run loaded for this long is proposed for retirement.",
    )
    regression_min_runs: int = Field(
        10,
        ge=1,
        description="Runs with a known outcome each skill version needs before a drop in "
        "success can open a revert proposal.",
    )
    llm_provider: Literal["auto", "anthropic", "openai", "offline"] = Field(
        "auto",
        description="LLM refinement: auto = anthropic if ANTHROPIC_API_KEY, else openai if"
        " OPENAI_API_KEY or llm_base_url, else offline.",
    )
    llm_model: str | None = Field(
        None, description="Model name (default: ANTHROPIC_MODEL / OPENAI_MODEL, else built-in)."
    )
    llm_base_url: str | None = Field(
        None, description="API base URL, e.g. http://localhost:8000/v1 for vLLM or Ollama."
    )
    llm_api_key: str | None = Field(
        None,
        repr=False,  # never in a log line or traceback
        description="API key (default: the provider's ANTHROPIC_/OPENAI_API_KEY variable).",
    )
    llm_max_calls: int = Field(20, ge=0, description="LLM requests per cycle, at most.")
    llm_max_input_tokens: int = Field(200_000, ge=0, description="Input tokens per cycle.")
    llm_max_output_tokens: int = Field(40_000, ge=0, description="Output tokens per cycle.")
    llm_max_cost_usd: float = Field(1.0, ge=0, description="Estimated USD per cycle, at most.")
    llm_usd_per_mtok_in: float = Field(3.0, ge=0, description="Price per million input tokens.")
    llm_usd_per_mtok_out: float = Field(
        15.0, ge=0, description="Price per million output tokens."
    )
    llm_timeout_seconds: float = Field(60.0, gt=0, description="Timeout of one LLM request.")
    llm_retries: int = Field(
        2, ge=0, description="SDK retries (with backoff) on 429, 5xx and timeouts."
    )
    http: str | None = Field(
        None, description="HOST:PORT where `serve` takes trajectories over HTTP (off if unset)."
    )
    http_token: str | None = Field(
        None, description="Bearer token HTTP intake requires (needed off loopback)."
    )
    http_max_bytes: int = Field(
        32 << 20, ge=1024, description="Larger HTTP request bodies are refused (413)."
    )
    host: Literal["auto", "github", "gitea", "none"] = Field(
        "auto",
        description="Code host for pull requests: auto = github when the remote is on github.com.",
    )
    host_api_url: str | None = Field(
        None, description="REST API root (default: api.github.com, or REMOTE-HOST/api/v1)."
    )
    host_repo: str | None = Field(None, description="owner/name (default: from the remote URL).")
    host_token: str | None = Field(
        None, repr=False, description="API token (default: GITHUB_TOKEN or GITEA_TOKEN)."
    )
    auto_merge: bool = Field(False, description="Merge proposals the auto-merge policy allows.")
    auto_merge_min_failures: int = Field(
        3, ge=1, description="Failed runs each auto-merged pitfall must be backed by."
    )

    @field_validator("db", mode="before")
    @classmethod
    def _db_as_text(cls, value: Any) -> Any:
        """A path (from code) as text; a URL other than PostgreSQL's refused up front."""
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, str) and "://" in value and not is_postgres(value):
            raise ValueError(
                f"{safe_url(value)} is neither a SQLite file's path nor a postgresql:// URL"
            )
        return value

    @property
    def db_is_postgres(self) -> bool:
        """Whether the store is a PostgreSQL database (`db = "postgresql://..."`)."""
        return self.db is not None and is_postgres(self.db)

    @property
    def db_path(self) -> Path:
        """The SQLite store's file. Raises ConfigError when the store is PostgreSQL, so a
        command not yet able to use it fails instead of writing to a stray SQLite file."""
        if self.db_is_postgres:
            raise ConfigError(
                f"db is a PostgreSQL URL ({self.store_display}), which this command does not"
                " support yet; give it a SQLite file's path"
            )
        return Path(self.db) if self.db else self.home / "skillforge.db"

    @property
    def store_location(self) -> str:
        """What `stores.open_store` takes: the PostgreSQL URL, or the SQLite file's path."""
        return self.db if self.db and self.db_is_postgres else str(self.db_path)

    @property
    def store_display(self) -> str:
        """The store's location fit for logs and `status`: a URL without its password."""
        return safe_url(self.db) if self.db and self.db_is_postgres else str(self.db_path)

    @property
    def library_path(self) -> Path:
        return self.library or self.home / "library"

    @property
    def remote_url(self) -> str:
        return self.remote or str(self.home / "library.git")

    @property
    def proposals_dir(self) -> Path:
        return self.home / "proposals"

    @property
    def quarantine_file(self) -> Path:
        return self.home / "quarantine.jsonl"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"


def load(
    path: Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
    cwd: Path | None = None,
) -> Config:
    """Build the configuration from file, environment and flags (later wins)."""
    environ = dict(os.environ if environ is None else environ)
    cwd = cwd or Path.cwd()
    explicit = path or (
        Path(environ[f"{ENV_PREFIX}CONFIG"]) if f"{ENV_PREFIX}CONFIG" in environ else None
    )
    values: dict[str, Any] = {}
    base = cwd
    config_file = explicit or (cwd / CONFIG_FILE)
    if explicit and not explicit.exists():
        raise ConfigError(f"config file {explicit} does not exist; create it or drop --config")
    if config_file.exists():
        try:
            values.update(
                tomllib.loads(config_file.read_text(encoding="utf-8")).get("skillforge", {})
            )
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file} is not valid TOML: {exc}") from exc
        base = config_file.resolve().parent
    for name in Config.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = environ[key]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = Config.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration: {problems}") from exc
    return _resolved(config, base)


def _resolved(config: Config, base: Path) -> Config:
    def absolute(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else base / p)

    db = config.db
    if db is not None and not is_postgres(db):
        db = str(absolute(Path(db)))
    remote = config.remote
    if remote and "://" not in remote and not remote.startswith("git@"):
        remote = str(absolute(Path(remote)))
    return config.model_copy(
        update={
            "inbox": absolute(config.inbox),
            "home": absolute(config.home),
            "db": db,
            "library": absolute(config.library),
            "remote": remote,
            "seed": absolute(config.seed),
        }
    )
