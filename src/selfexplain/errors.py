"""The one exception type meant for users: bad input, named precisely.

The CLI prints a ``UserError`` as a single line and exits with status 2; any
other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input (file, row, field, name) described in one line."""


class NothingToTrain(UserError):
    """A training route found no training examples in its data (DPO: no input with a pair)."""
