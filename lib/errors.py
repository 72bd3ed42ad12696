"""The exception users see: the CLI prints its message (no traceback) and pages show it."""

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix; the message says what and how."""
