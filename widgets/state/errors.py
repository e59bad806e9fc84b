"""The explorer's errors: a user's choice that cannot work, and a cancelled job."""
from __future__ import annotations

__all__ = ["UserInputError", "Cancelled", "to_user_error"]


class UserInputError(ValueError):
    """Something the user chose cannot work; the message says what to do instead."""


class Cancelled(Exception):
    """The user pressed Cancel while a job ran."""


def to_user_error(err: Exception) -> UserInputError:
    return err if isinstance(err, UserInputError) else UserInputError(str(err))
