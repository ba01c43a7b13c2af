"""Reports: everything that turns records into something a person reads.  They read run folders and import no
pipeline module.

:mod:`.summary` holds the views of one run; :mod:`.study` reads a study, :mod:`.tables` computes the paper's
tables, :mod:`.reading` judges its claims, :mod:`.figures` draws its figures, :mod:`.lexicon` counts the words of
faithful explanations (table 6), :mod:`.html` writes the one-page report and :mod:`.study_report` writes them
all.  The numbers come from the records; these modules only aggregate and format them.
"""

from .study_report import IncompleteStudy, all_tables, write_study_report
from .summary import construction_markdown, fmt_ci, influence_text, summary_markdown, summary_table

__all__ = [
    "summary_table",
    "summary_markdown",
    "construction_markdown",
    "influence_text",
    "fmt_ci",
    "all_tables",
    "IncompleteStudy",
    "write_study_report",
]
