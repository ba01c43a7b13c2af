"""The ``selfexplain`` command line (typer), one module per command (as lm-evaluation-harness's ``_cli/``).  Flags
follow lm-evaluation-harness, hyphenated.

Every command turns a :class:`~selfexplain.errors.UserError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

# Each module registers its command on the app when imported; this order is the order of `selfexplain --help`.
# isort: off
from . import evaluate  # noqa: F401
from . import attribute  # noqa: F401
from . import construct  # noqa: F401
from . import train  # noqa: F401
from . import catalog  # noqa: F401
from . import reproduce  # noqa: F401
from . import report  # noqa: F401
from . import rejudge  # noqa: F401
from . import compare  # noqa: F401
from . import cot  # noqa: F401
from . import leaderboard  # noqa: F401
from . import data  # noqa: F401

# isort: on
from .app import LOG_WIDTH, app, console, err

__all__ = ["app", "main", "console", "err", "LOG_WIDTH"]


def main() -> None:  # pragma: no cover
    sys.exit(app())
