"""Errors a user can fix: bad options, missing or broken files.

The CLI prints a ``UserError`` as one line (``rnnkit: error: ...``) and exits
with status 2; anything else is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """A bad input (option, value, file) described in one line."""
