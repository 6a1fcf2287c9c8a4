"""Configuration: defaults, then `skillforge.toml`, then `SKILLFORGE_*` variables, then flags.

Every path is resolved against the directory the configuration was read in (the config
file's folder, else the current directory), so `make run` in a checkout uses `./var`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

CONFIG_FILE = "skillforge.toml"
ENV_PREFIX = "SKILLFORGE_"


class Config(BaseModel):
    """Where things live and how often the evolver runs."""

    model_config = ConfigDict(extra="forbid")

    inbox: Path = Field(Path("trajectories"), description="Folder agents append *.jsonl to.")
    home: Path = Field(Path("var"), description="State folder: store, library, proposals.")
    db: Path | None = Field(None, description="SQLite store (default HOME/skillforge.db).")
    library: Path | None = Field(None, description="Library working copy (default HOME/library).")
    remote: str | None = Field(None, description="Library remote (default HOME/library.git).")
    seed: Path | None = Field(Path("skills"), description="Skills a new library starts from.")
    evolve_every_minutes: float = Field(15.0, gt=0, description="Cycle interval.")
    evolve_after: int = Field(50, ge=1, description="New trajectories that start a cycle early.")
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

    @property
    def db_path(self) -> Path:
        return self.db or self.home / "skillforge.db"

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

    remote = config.remote
    if remote and "://" not in remote and not remote.startswith("git@"):
        remote = str(absolute(Path(remote)))
    return config.model_copy(
        update={
            "inbox": absolute(config.inbox),
            "home": absolute(config.home),
            "db": absolute(config.db),
            "library": absolute(config.library),
            "remote": remote,
            "seed": absolute(config.seed),
        }
    )
