"""What the tests share besides fixtures: where the data is, and running the command.

Imported by the test modules (``from helpers import ...``); pytest's fixtures stay in
``conftest.py``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from dense_head_pose.model_build.bfm_import import import_full_bfm

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DHP_SHARED", REPO.parent / "shared"))
TESTDATA = SHARED / "testdata"
VIDEO = TESTDATA / "talking_head.mp4"
SHARED_MODELS = SHARED / "models"  # the pack converted with torch, before models build
#: The user-facing documentation: the README and every page of docs/.
USER_DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _built_pack() -> Path:
    """The pack the set-up built (models build from ../shared/upstream), as the package
    finds it."""
    from dense_head_pose import ModelError, model_pack

    try:
        return model_pack.locate()
    except ModelError:
        return REPO / "models"  # tests that need it fail saying so


PACK = _built_pack()


def docs_text() -> str:
    """The README and the docs pages, one text."""
    return "\n".join(p.read_text() for p in USER_DOCS)


def rotate_image(image, degrees: float):
    """Rotate counter-clockwise (as displayed) about the centre, keeping everything in view."""
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos), int(h * cos + w * sin)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return cv2.warpAffine(image, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)


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


def system_library(name: str) -> Path:
    """A shared library of the system (another library under this package's names)."""
    for pattern in (f"/lib/*/{name}", f"/usr/lib/*/{name}", f"/lib64/{name}", f"/usr/lib/{name}"):
        found = sorted(Path("/").glob(pattern.lstrip("/")))
        if found:
            return found[0]
    pytest.skip(f"no {name} found")


def png_bomb(width: int, height: int) -> bytes:
    """A real grey PNG of ``width`` x ``height`` zero pixels: a few hundred kB that decode
    to ``width * height`` bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = bytes(width + 1)  # filter byte + pixels
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                               0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def pack_with_full_bfm(tmp_path: Path) -> Path:
    """A copy of the pack with a small synthetic full BFM imported."""
    pack = tmp_path / "pack"
    shutil.copytree(PACK, pack)
    rng = np.random.default_rng(5)
    n = 300
    keypoints = rng.choice(n, 68, replace=False)
    flat_kp = np.stack([3 * keypoints, 3 * keypoints + 1, 3 * keypoints + 2], 1).reshape(-1)
    bfm = {"u": rng.normal(size=(3 * n, 1)).astype(np.float32),
           "w_shp": rng.normal(size=(3 * n, 40)).astype(np.float32),
           "w_exp": rng.normal(size=(3 * n, 10)).astype(np.float32),
           "tri": np.stack([np.arange(0, n - 2), np.arange(1, n - 1), np.arange(2, n)]),
           "keypoints": flat_kp}
    pkl = tmp_path / "bfm.pkl"
    pkl.write_bytes(pickle.dumps(bfm, protocol=2))
    import_full_bfm(pkl, pack, pack / "bfm_dense_mean.npz")
    return pack
