"""Code hosts (GitHub, Gitea/Forgejo): pull requests for proposals, read back when decided."""

from .base import CodeHost, Comment, PullRequest
from .detect import host_from_config

__all__ = ["CodeHost", "Comment", "PullRequest", "host_from_config"]
