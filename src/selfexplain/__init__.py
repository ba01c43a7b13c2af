"""selfexplain: measure and train the faithfulness of LLM self-explanations.

Modules, one concept each: ``words`` (word definitions), ``styles``
(parse/check/apply explanations), ``tasks`` (task registry, data), ``backends``
(model loading and inference), ``evaluation`` (the self-consistency check),
``store`` (resumable run folders), ``reports`` (tables), ``api`` and ``cli``.
Importing the package is cheap: torch loads only when a model does.
"""

__version__ = "0.1.0"
