"""Whether an optional heavy module (torch) is imported *and initialized* in this process.

Code that only converts to torch objects when torch is already there (a record read back
from the cache or from another worker keeps numpy arrays otherwise) must not take
``"torch" in sys.modules`` for that: a module enters ``sys.modules`` when its import
*starts*, so while one thread imports torch another sees a half-built module
("partially initialized module 'torch' has no attribute ...", seen in a Dask worker whose
event-loop thread unpickled a task's data while its task thread imported torch).
"""

from __future__ import annotations

import sys
from types import ModuleType


def loaded(name: str) -> ModuleType | None:
    """Module *name* when its import has finished in this process, else None (not
    imported, or still being imported by some thread)."""
    mod = sys.modules.get(name)
    if mod is None:
        return None
    # importlib marks a module's spec while it runs the module's code
    if getattr(getattr(mod, "__spec__", None), "_initializing", False):
        return None
    return mod
