"""Layer 6, the results folder: summary.json, CSVs and the printed table (``write``),
plots (``plots``) and report.html (``html``).

``write_results``, ``format_table`` and ``json_default`` are the public entry points
(``simulator.results.write_results(rr, path)``), re-exported lazily so that the plots
module does not pull in the engine.
"""

from typing import Any

__all__ = ["format_table", "json_default", "write_results"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from simulator.results import write

        return getattr(write, name)
    raise AttributeError(f"module 'simulator.results' has no attribute {name!r}")
