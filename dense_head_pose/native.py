"""Finding and loading this package's native libraries (``native/*.c``) with ctypes.

They are plain C (no Python C API), so one build serves every Python version. pip builds each
as an extension module (``_dhp_<name>*.so`` in the package directory), colcon as
``libdhp_<name>.so`` in the same place; an environment variable can name another file. Each
library exports ``dhp_<name>_abi_version()``, checked here so a stale build is refused rather
than called with the wrong arguments.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from pathlib import Path

from .errors import NativeLibraryError

BUILD_HINT = "build it with `pip install .` (or `pip install -e .`) or `colcon build`"


def library_candidates(name: str, env_var: str) -> list[Path]:
    """Where library ``name`` is looked for: ``$env_var``, then the package directory."""
    here = Path(__file__).resolve().parent
    found = [Path(os.environ[env_var])] if os.environ.get(env_var) else []
    names = [f"libdhp_{name}.so", *(f"_dhp_{name}{s}" for s in
                                    importlib.machinery.EXTENSION_SUFFIXES)]
    return found + [here / n for n in names]


def load(name: str, env_var: str, abi_version: int, what: str,
         error: type[NativeLibraryError] = NativeLibraryError,
         path: Path | None = None) -> ctypes.CDLL:
    """Load library ``name`` (or ``path``) and check its ABI version; raise ``error`` with a
    message that says what to do when it is missing, unloadable, foreign or stale."""
    candidates = [path] if path else library_candidates(name, env_var)
    for candidate in candidates:
        if not candidate.is_file():
            continue
        try:
            lib = ctypes.CDLL(str(candidate))
        except OSError as exc:
            raise error(f"{candidate} cannot be loaded ({exc}); rebuild it: {BUILD_HINT}") \
                from exc
        try:
            version = getattr(lib, f"dhp_{name}_abi_version")
        except AttributeError as exc:  # another library under that name
            raise error(f"{candidate} is not the dense_head_pose {what} ({exc}); "
                        f"{BUILD_HINT}") from exc
        version.restype, version.argtypes = ctypes.c_int, []
        if version() != abi_version:
            raise error(f"{candidate} is a stale build; {BUILD_HINT}")
        return lib
    raise error(f"the native {what} library is not built (looked in "
                f"{', '.join(str(c) for c in candidates)}); {BUILD_HINT}")
