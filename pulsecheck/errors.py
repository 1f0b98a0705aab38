"""One error hierarchy; the CLI maps each class to an exit code."""

from __future__ import annotations


class PulsecheckError(Exception):
    """Base of every error a user can act on."""

    exit_code = 1


class InputError(PulsecheckError):
    """Bad input or usage: a file, a field, an argument (exit 2)."""

    exit_code = 2


class RefusedError(PulsecheckError):
    """A well-formed request that a guard or permission refuses (exit 1)."""

    exit_code = 1


class ConflictError(RefusedError):
    """Someone else changed the record first (optimistic locking, exit 1)."""

    exit_code = 1


class NotFoundError(InputError):
    """A named record (user, account, review...) does not exist (exit 2)."""


class ValidationFailed(InputError):
    """A file with one or more problems; `problems` holds every one, each `file:line: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}" if problems else "invalid input")
