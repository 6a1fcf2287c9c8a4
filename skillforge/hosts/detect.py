"""Which code host (if any) the library's remote lives on, from the configuration.

`host` = github | gitea | none, or auto: github when the remote is on github.com (Gitea
cannot be told from a URL). The token is `host_token` (SKILLFORGE_HOST_TOKEN), else
GITHUB_TOKEN or GITEA_TOKEN; the repository is `host_repo`, else the remote URL's path.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError
from .base import CodeHost
from .gitea import Gitea
from .github import PUBLIC_API, GitHub

_SCP = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.+)$")  # git@github.com:owner/name.git
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class RemoteURL:
    scheme: str
    hostname: str
    netloc: str
    path: str


def parse_remote(remote: str) -> RemoteURL | None:
    """The parts of a network remote URL (https, ssh, git, scp-like); None for a local path."""
    if "://" in remote:
        parts = urllib.parse.urlsplit(remote)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return RemoteURL(parts.scheme, parts.hostname or "", netloc, parts.path)
    match = _SCP.match(remote)
    if match and not remote.startswith(("/", ".")):
        return RemoteURL("ssh", match.group(1), match.group(1), "/" + match.group(2))
    return None


def host_from_config(
    config: Config, environ: Mapping[str, str] | None = None, *, backoff: float = 0.5
) -> CodeHost | None:
    """The code host to open pull requests on, or None for the local review flow."""
    environ = os.environ if environ is None else environ
    remote = parse_remote(config.remote_url)
    kind = config.host
    if kind == "auto":
        kind = "github" if remote and remote.hostname.lower() == "github.com" else "none"
        if kind == "github" and not _token(config, environ, kind):
            return None  # a GitHub remote without a token: review locally, as before
    if kind == "none":
        return None
    token = _token(config, environ, kind)
    if not token:
        raise ConfigError(
            f"host is {kind} but no token is set: set SKILLFORGE_HOST_TOKEN (or "
            f'{kind.upper()}_TOKEN), or host = "none" to review locally'
        )
    repo = config.host_repo or _repo_from(remote)
    if not repo or not _REPO.match(repo) or ".." in repo:
        raise ConfigError(
            f"cannot tell the {kind} repository from the remote {config.remote_url!r}; "
            'set host_repo = "owner/name"'
        )
    api = config.host_api_url or _api_from(kind, remote)
    if not api or not api.startswith(("https://", "http://")):
        raise ConfigError(f"set host_api_url to the {kind} REST API root (https://HOST/...)")
    if kind == "github":
        return GitHub(api, repo, token, backoff=backoff)
    return Gitea(api, repo, token, backoff=backoff)


def _token(config: Config, environ: Mapping[str, str], kind: str) -> str | None:
    return config.host_token or environ.get(f"{kind.upper()}_TOKEN") or None


def _repo_from(remote: RemoteURL | None) -> str | None:
    if remote is None:
        return None
    parts = [p for p in remote.path.removesuffix("/").removesuffix(".git").split("/") if p]
    return "/".join(parts[-2:]) if len(parts) >= 2 else None


def _api_from(kind: str, remote: RemoteURL | None) -> str | None:
    if remote is None:
        return None
    if kind == "github":
        if remote.hostname.lower() == "github.com":
            return PUBLIC_API
        return f"https://{remote.hostname}/api/v3"
    scheme = remote.scheme if remote.scheme in ("http", "https") else "https"
    netloc = remote.netloc if scheme == remote.scheme else remote.hostname
    return f"{scheme}://{netloc}/api/v1"
