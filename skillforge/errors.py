"""Expected failures, as a small tree of named exceptions.

* SkillforgeError            anything the user can act on; the CLI prints it and exits 1
  x ConfigError              bad configuration value or missing path
  x IntakeError              a file or line could not be taken in
    + InvalidTrajectory      a line is not a trajectory (carries the reason)
  x StoreError               the SQLite store failed
  x LibraryRepoError         a git operation on the skill library failed
    + UnsafePathError        a skill name or path would write outside the library
    + LibraryLockedError     another process holds the library lock
    + MergeConflictError     a proposal no longer merges cleanly into main
  x ReviewError              a review action does not apply (unknown id, already decided)

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
