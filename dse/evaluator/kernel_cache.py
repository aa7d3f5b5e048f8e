"""numba's on-disk cache of the compiled evaluator, keyed on the evaluator's whole layout.

numba keys a cached kernel on its own source file only (numba.core.caching: the index holds
a hash of that file), but the evaluator's kernels read column indices and constants from
other modules (``C_*``, ``R_*`` ... in dse/evaluator/columns.py; the ZeRO stages of
workloads/scenario.py): relabelling a column there left every cached kernel reading the old
columns, silently. Here every kernel of the evaluator's files is also keyed on LAYOUT_KEY, a
hash of every file its constants can come from, so any change there recompiles.

NOTE: a custom locator is numba's documented extension point for cache placement; keying by
values instead (hashing the globals each kernel reads) would miss callees defined later in a
module, which do not exist yet when numba builds the cache at decoration time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

__all__ = ["LAYOUT_KEY", "LAYOUT_SOURCES", "install"]

_HERE = Path(__file__).resolve().parent
# Every file whose constants compiled code reads: the evaluator package, and the scenario
# module (training's ZeRO stages).
LAYOUT_SOURCES = (*sorted(_HERE.glob("*.py")), _HERE.parent.parent / "workloads" / "scenario.py")


def _layout_key() -> str:
    digest = hashlib.sha256()
    for path in LAYOUT_SOURCES:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


LAYOUT_KEY = _layout_key()


def _keyed(base: type) -> type:
    """``base`` (a numba cache locator) for the evaluator's files, its stamp keyed on the
    layout; other files are left to numba's own locators."""

    class Keyed(base):
        def get_source_stamp(self):
            return super().get_source_stamp(), LAYOUT_KEY

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != _HERE:
                return None
            return super().from_function(py_func, py_file)

    Keyed.__name__ = Keyed.__qualname__ = f"LayoutKeyed{base.__name__}"
    return Keyed


def install() -> None:
    """Put the keyed locators first in numba's list (NUMBA_CACHE_DIR, then __pycache__, then
    the user-wide folder, as numba orders its own); idempotent."""
    locators = caching.CacheImpl._locator_classes
    if any(getattr(c, "_layout_keyed", False) for c in locators):
        return
    keyed = [_keyed(c) for c in (caching.UserProvidedCacheLocator, caching.InTreeCacheLocator,
                                 caching.UserWideCacheLocator)]
    for c in keyed:
        c._layout_keyed = True
    locators[:0] = keyed
