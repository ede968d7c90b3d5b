"""What the tests share besides fixtures: where the data is, and running the command.

Imported by the test modules (``from helpers import ...``); pytest's fixtures stay in
``conftest.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DHP_SHARED", REPO.parent / "shared"))
TESTDATA = SHARED / "testdata"
VIDEO = TESTDATA / "talking_head.mp4"


def cli(*args: object, env: dict | None = None, timeout: float = 900,
        **kwargs: object) -> subprocess.CompletedProcess:
    """``dense-head-pose ARGS...`` as a user runs it: a real process; output captured as
    text (unless ``stdout``/``stderr`` are given)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "dense_head_pose", *map(str, args)],
                          text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})}, **kwargs)  # type: ignore[call-overload]


def cli_with_read_only(directory: Path, *args: object,
                       timeout: float = 900) -> subprocess.CompletedProcess | None:
    """``dense-head-pose ARGS...`` with ``directory`` a read-only mount (a bind mount in a
    user and mount namespace of its own: works for root, whom file modes do not stop);
    None where namespaces are not available."""
    import shlex
    import shutil

    if shutil.which("unshare") is None:
        return None
    d = shlex.quote(str(directory))
    script = (f"mount --bind {d} {d} && mount -o remount,bind,ro {d} || exit 99; "
              f'exec "$0" -m dense_head_pose "$@"')
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                           script, sys.executable, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, check=False)
    return None if proc.returncode == 99 else proc
