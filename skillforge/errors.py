"""Expected failures, as a small tree of named exceptions.

* SkillforgeError            anything the user can act on; the CLI prints it and exits 1
  x ConfigError              bad configuration value or missing path
  x IntakeError              a file or line could not be taken in
    + InvalidTrajectory      a line is not a trajectory (carries the reason)
    + FormatMismatchError    a file is not in the format asked for (`import --format`)
    + MappingError           a format mapping file is unreadable or invalid
  x StoreError               the SQLite store failed
  x LibraryRepoError         a git operation on the skill library failed
    + UnsafePathError        a skill name or path would write outside the library
    + LibraryLockedError     another process holds the library lock
    + MergeConflictError     a proposal no longer merges cleanly into main
  x ReviewError              a review action does not apply (unknown id, already decided)
  x CodeHostError            a code host's REST API refused or failed a call (its message kept)
    + HostAuthError          the host token is missing, wrong or lacks a permission
  x LLMError                 a model request failed (the LLM client turns it into a note)
    + LLMUnavailableError    the API is down, rate-limited or timing out after retries
    + LLMRequestRejected     the API refused this request (400/422), e.g. an unsupported option
    + BudgetExhaustedError   the cycle's LLM budget does not cover this request
  x ClientError              the client library was misused (no inbox and no url)
    + DeliveryError          a trajectory reached neither the daemon nor an inbox
  x RollbackError            no such skill or version to roll back to
  x SyncError                an agent's skills folder cannot be synced safely (says why)

Foreign exceptions (GitCommandError, sqlite3.Error, pydantic.ValidationError) are translated
where they enter, with `raise ... from exc`, so callers handle only these.
"""

from __future__ import annotations


class SkillforgeError(Exception):
    """Base of every expected skillforge failure."""


class ConfigError(SkillforgeError):
    pass


class IntakeError(SkillforgeError):
    pass


class InvalidTrajectory(IntakeError):
    """A line that cannot become a trajectory. `reason` is shown in the quarantine."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FormatMismatchError(IntakeError):
    """A file is not in the format `skillforge import --format` named, or no known format."""


class MappingError(IntakeError):
    """A declarative format mapping file that cannot be read or is invalid."""


class StoreError(SkillforgeError):
    pass


class LibraryRepoError(SkillforgeError):
    pass


class UnsafePathError(LibraryRepoError):
    pass


class LibraryLockedError(LibraryRepoError):
    pass


class MergeConflictError(LibraryRepoError):
    pass


class ReviewError(SkillforgeError):
    pass


class ClientError(SkillforgeError):
    """The client library was called in a way that cannot work."""


class DeliveryError(ClientError):
    """A trajectory could not be delivered; `trajectory` holds it so nothing is lost."""

    def __init__(self, message: str, trajectory: object = None) -> None:
        super().__init__(message)
        self.trajectory = trajectory


class LLMError(SkillforgeError):
    pass


class LLMUnavailableError(LLMError):
    """The API failed hard (after the SDK's retries); later asks this cycle are refused fast."""


class LLMRequestRejected(LLMError):
    """The API refused this one request; `message` says why, so a backend can adapt."""


class BudgetExhaustedError(LLMError):
    """A request the budget cannot cover; the message says which limit."""


class CodeHostError(SkillforgeError):
    """A code host (GitHub, Gitea) call failed; `status` is the HTTP status, 0 when unreachable."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class HostAuthError(CodeHostError):
    pass


class RollbackError(SkillforgeError):
    pass


class SyncError(SkillforgeError):
    pass
