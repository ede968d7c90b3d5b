"""The model pack: manifest, location, verification and fetching.

Weights are third-party data and never live in the repository. ``models/manifest.json`` lists
each file with its size, SHA-256, origin and licence; :func:`fetch` copies or downloads the pack
into a directory and verifies it; :func:`locate` finds an installed pack; :func:`verify` checks
one. A missing or corrupt file produces a single :class:`~dense_head_pose.errors.ModelError`
naming the file and the command that repairs it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import stat
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import ModelError

ENV_VAR = "DENSE_HEAD_POSE_MODELS"
PACKAGE_NAME = "dense_head_pose"
MANIFEST_NAME = "manifest.json"
FETCH_HINT = "dense-head-pose models build"
_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0
INT8_REGRESSOR = "face_3dmm_mb05_int8.tflite"
FULL_BFM = "bfm_dense_full.npz"
#: Files a pack may hold beyond the manifest, each made here (so not pinned: the int8 model
#: depends on its calibration images, the full BFM is the user's) with the command that
#: makes it. Each has its SHA-256 recorded beside it (``NAME.sha256``) when it is written,
#: and is checked against it at load and by ``models check``.
LOCAL_FILES = {
    INT8_REGRESSOR: "dense-head-pose models build --precision int8 --calibration "
                    "VIDEOS_OR_IMAGES",
    FULL_BFM: "dense-head-pose models import-bfm bfm_noneck_v3.pkl",
}
HASH_SUFFIX = ".sha256"


@dataclass(frozen=True)
class ModelFile:
    """One entry of the manifest."""

    name: str
    role: str
    bytes: int
    sha256: str
    origin: str
    licence: str


def _package_dir() -> Path:
    """The ``dense_head_pose`` package directory (the manifests are copied into it by a pip
    build; a source checkout's ``models/`` is beside it)."""
    return Path(__file__).resolve().parents[1]


def manifest_path() -> Path:
    """The manifest shipped with the code (source tree, pip install or colcon install)."""
    candidates = [
        _package_dir().parent / "models" / MANIFEST_NAME,  # source checkout
        _package_dir() / MANIFEST_NAME,  # copied into the package by setup.py
        *(d / MANIFEST_NAME for d in _share_dirs()),
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelError(f"the model manifest ({MANIFEST_NAME}) is not installed with {PACKAGE_NAME}")


def load_manifest(path: Path | None = None) -> list[ModelFile]:
    """Read the manifest into :class:`ModelFile` entries."""
    path = path or manifest_path()
    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        ModelFile(
            name=f["name"], role=f["role"], bytes=int(f["bytes"]), sha256=f["sha256"].lower(),
            origin=f["origin"], licence=f["licence"],
        )
        for f in data["files"]
    ]


def _share_dirs() -> list[Path]:
    """``share/dense_head_pose/models`` of a colcon/ament install and of a pip prefix."""
    dirs: list[Path] = []
    # a ROS 2 install's ament index: the first prefix of AMENT_PREFIX_PATH that registers
    # the package (what ament_index_python looks up, without importing ROS)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        index = Path(prefix) / "share" / "ament_index" / "resource_index" / "packages"
        if prefix and (index / PACKAGE_NAME).is_file():
            dirs.append(Path(prefix) / "share" / PACKAGE_NAME / "models")
            break
    dirs.append(Path(sys.prefix) / "share" / PACKAGE_NAME / "models")
    return dirs


def user_data_dir() -> Path:
    """Per-user location used by ``models build``/``fetch`` when nothing else is writable."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / PACKAGE_NAME / "models"


def search_path(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """Directories searched for the pack, in order of precedence."""
    if explicit:
        return [Path(explicit)]
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR])]
    return [*_share_dirs(), _package_dir().parent / "models", user_data_dir()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("missing", "a directory", ...);
    None for a regular file (a symlink to one included)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "missing" if not path.is_symlink() else "a broken symlink"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
    return f"not a regular file ({kind})"


def check_file(path: Path, entry: ModelFile) -> str | None:
    """Return ``None`` when ``path`` matches the manifest entry, else what is wrong with it."""
    problem = _not_a_file(path)
    if problem:
        return problem
    size = path.stat().st_size
    if size != entry.bytes:
        return f"size {size} bytes, expected {entry.bytes} (truncated or wrong file)"
    try:
        digest = _sha256(path)
    except OSError as exc:  # e.g. another user's file, mode 0600
        return f"unreadable ({exc.strerror})"
    if digest != entry.sha256:
        return f"SHA-256 {digest[:16]}..., expected {entry.sha256[:16]}... (corrupt or wrong file)"
    return None


def recorded_hash_problem(path: Path) -> str | None:
    """What is wrong with a :data:`LOCAL_FILES` file against the SHA-256 recorded beside it
    when it was written; None if it matches."""
    problem = _not_a_file(path)
    if problem:
        return problem
    record = path.with_name(path.name + HASH_SUFFIX)
    try:
        recorded = record.read_text(encoding="ascii").split()[0].lower()
        actual = _sha256(path)
    except (OSError, IndexError, UnicodeDecodeError) as exc:
        return f"its recorded hash {record.name} is missing or unreadable ({exc})"
    if actual != recorded:
        return (f"changed since it was written (SHA-256 {actual[:12]}..., recorded "
                f"{recorded[:12]}...)")
    return None


def require_recorded(path: Path) -> None:
    """:class:`ModelError`, with the command that makes the file again, unless ``path`` (a
    :data:`LOCAL_FILES` file) matches its recorded SHA-256."""
    problem = recorded_hash_problem(path)
    if problem:
        remake = LOCAL_FILES.get(path.name, FETCH_HINT)
        raise ModelError(f"{path}: {problem}; make it again: {remake} --dest {path.parent}"
                         if path.name == INT8_REGRESSOR else
                         f"{path}: {problem}; make it again: {remake} --models {path.parent}")


def write_with_hash(target: Path, produce: Callable[[Path], None]) -> None:
    """Write a :data:`LOCAL_FILES` file as :func:`write_verified` does, its SHA-256
    recorded beside it first: an interrupted write leaves the old file (or none) and a
    record that does not match it, which the load refuses with the command that repairs
    it, never a file that passes for what it is not."""
    write_verified(target, produce, record_hash=True)


def verify(directory: Path, entries: Iterable[ModelFile] | None = None,
           local: bool = True) -> dict[str, str | None]:
    """Check every manifest file in ``directory``, and (``local``) each :data:`LOCAL_FILES`
    file that is there (or whose hash record is); map file name to problem or ``None``."""
    entries = list(entries) if entries is not None else load_manifest()
    out = {e.name: check_file(directory / e.name, e) for e in entries}
    for name in LOCAL_FILES if local else ():
        path = directory / name
        if path.exists() or path.is_symlink() or path.with_name(name + HASH_SUFFIX).exists():
            out[name] = recorded_hash_problem(path)
    return out


def locate(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Find a complete, verified model pack.

    Precedence: ``explicit`` (``--models DIR``) > ``$DENSE_HEAD_POSE_MODELS`` > the installed
    package's share directory > the source tree's ``models/`` > the per-user data directory.
    The first directory holding any pack file is the one used and must be complete: silently
    skipping a corrupt pack for another one would hide the corruption.
    """
    entries = load_manifest()
    candidates = search_path(explicit)
    for directory in candidates:
        if directory.exists() and not directory.is_dir():
            raise ModelError(f"{directory} is not a directory (the model pack is a directory "
                             f"of files); point --models / ${ENV_VAR} at one")
        if any((directory / e.name).exists() for e in entries):
            # the optional files are checked when they are loaded (and by models check)
            problems = {k: v for k, v in verify(directory, entries, local=False).items() if v}
            if problems:
                detail = "; ".join(f"{directory / k}: {v}" for k, v in problems.items())
                raise ModelError(f"model pack in {directory} is incomplete: {detail}. "
                                 f"Repair it with: {FETCH_HINT} --dest {directory}")
            return directory
    searched = ", ".join(str(d) for d in candidates)
    raise ModelError(f"no model pack found (searched {searched}). Build it with: {FETCH_HINT} "
                     "(downloads its upstream files; --from DIR for local copies)")


def default_fetch_dest() -> Path:
    """Where ``models build``/``fetch`` write without ``--dest``, by the rule :func:`locate`
    reads by: ``$DENSE_HEAD_POSE_MODELS``, else the first directory of the search path that
    holds a pack (so a build repairs the very pack the commands load), else the source
    checkout's ``models/`` when writable, else the per-user data directory."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    names = [e.name for e in load_manifest()]
    for directory in search_path():
        if directory.is_dir() and any((directory / n).exists() for n in names):
            return directory
    repo_models = _package_dir().parent / "models"
    if (repo_models / MANIFEST_NAME).is_file() and os.access(repo_models, os.W_OK):
        return repo_models
    return user_data_dir()


def describe(directory: Path) -> str:
    """Which place of the search path ``directory`` is, for the commands' messages."""
    def same(a: Path, b: Path) -> bool:
        return os.path.realpath(a) == os.path.realpath(b)

    directory = Path(directory)
    if os.environ.get(ENV_VAR) and same(Path(os.environ[ENV_VAR]), directory):
        return f"${ENV_VAR}"
    if any(same(d, directory) for d in _share_dirs()):
        return "the installed package's share directory"
    if same(directory, _package_dir().parent / "models"):
        return "the source checkout"
    if same(directory, user_data_dir()):
        return "the per-user data directory"
    return "given"


class Pinned(Protocol):
    """A file known by name, size and SHA-256 (a pack file, an upstream file)."""

    name: str
    bytes: int
    sha256: str


def copy_checked(src: Path, out: Path, entry: Pinned) -> None:
    """Copy ``src`` to ``out`` after checking that it is a regular file of the pinned size
    (a wrong file is refused before any byte is copied, however large it is)."""
    problem = _not_a_file(src)
    if problem:
        raise ModelError(f"{src}: {'does not exist' if problem == 'missing' else problem}")
    size = src.stat().st_size
    if size != entry.bytes:
        raise ModelError(f"{src} is {size} bytes, expected {entry.bytes} (truncated or wrong "
                         "file)")
    shutil.copyfile(src, out)


def download(url: str, out: Path, limit: int, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """``url`` into ``out``, at most ``limit`` bytes; :class:`ModelError` on any failure (a
    server that stops answering fails after ``timeout`` seconds without data)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, out.open("wb") as fh:
            received = 0
            while block := response.read(_CHUNK):
                received += len(block)
                if received > limit:
                    raise ModelError(f"download of {url}: more than the {limit} bytes expected")
                fh.write(block)
    except ModelError:
        raise
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts: OSError
        raise ModelError(f"download of {url} failed: {exc}") from exc


def write_verified(target: Path, produce: Callable[[Path], None],
                   entry: Pinned | None = None, record_hash: bool = False) -> None:
    """Write ``target`` through a temporary file in its directory: ``produce(tmp)`` fills
    it, ``entry`` (if given) must match its size and SHA-256, ``record_hash`` writes its
    SHA-256 beside it (``NAME.sha256``, before the file itself), and only then is it renamed
    into place with the umask's mode, so an interrupted, failed or corrupt write never
    leaves a file that looks complete."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=target.parent)
    except OSError as exc:
        raise ModelError(f"cannot write into {target.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        produce(tmp)
        if entry is not None:
            problem = check_file(tmp, entry)  # type: ignore[arg-type]
            if problem:
                raise ModelError(f"refusing {target.name}: {problem}")
        if record_hash:
            digest = _sha256(tmp)
            write_verified(target.with_name(target.name + HASH_SUFFIX),
                           lambda out: out.write_text(f"{digest}  {target.name}\n",
                                                      encoding="ascii"))
        tmp.chmod(_file_mode())  # mkstemp's 0600 would lock other users (a service) out
        os.replace(tmp, target)
    except OSError as exc:  # a full disk, a read-only or vanished directory
        raise ModelError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def prepare_dest(dest: Path, names: Iterable[str], log: Callable[[str], None]) -> None:
    """Create ``dest`` and remove what an interrupted write of ``names`` left there."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ModelError(f"cannot write into {dest}: it is not a directory") from exc
    except OSError as exc:
        raise ModelError(f"cannot create {dest}: {exc.strerror}") from exc
    _remove_stale_partials(dest, set(names), log)


def fetch(
    dest: Path,
    source_dir: Path | None = None,
    base_url: str | None = None,
    log: Callable[[str], None] = print,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> list[Path]:
    """Copy (``source_dir``) or download (``base_url``) a built pack into ``dest``, verified
    against the manifest (:func:`write_verified`). Files already present and valid are
    kept. (``models build`` makes the pack from its upstream files instead.)"""
    if (source_dir is None) == (base_url is None):
        raise ValueError("give exactly one of source_dir and base_url")
    entries = load_manifest()
    prepare_dest(dest, [e.name for e in entries], log)
    written: list[Path] = []
    for entry in entries:
        target = dest / entry.name
        if check_file(target, entry) is None:
            log(f"ok       {target}")
            written.append(target)
            continue
        if source_dir is not None:
            write_verified(target, lambda tmp, e=entry: copy_checked(source_dir / e.name, tmp,
                                                                     e), entry)
        else:
            assert base_url is not None
            url = urllib.parse.urljoin(base_url.rstrip("/") + "/", urllib.parse.quote(entry.name))
            write_verified(target, lambda tmp, u=url, e=entry: download(u, tmp, e.bytes,
                                                                        timeout), entry)
        log(f"fetched  {target}")
        written.append(target)
    copy_manifest(dest)
    return written


def copy_manifest(dest: Path) -> None:
    """Put the manifest beside the pack (``models check`` and humans read it there)."""
    manifest_copy = dest / MANIFEST_NAME
    if manifest_copy.exists() and manifest_copy.read_bytes() == manifest_path().read_bytes():
        return
    write_verified(manifest_copy, lambda tmp: shutil.copyfile(manifest_path(), tmp))


def _file_mode() -> int:
    """0666 less the process umask, the mode a plain ``open()`` would have given."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_partials(dest: Path, names: set[str], log: Callable[[str], None]) -> None:
    """Delete the temporary files of a write that was killed (SIGKILL, power loss)."""
    for leftover in dest.glob(".*.partial"):
        if any(leftover.name.startswith(f".{name}.") for name in names):
            leftover.unlink(missing_ok=True)
            log(f"removed  {leftover} (left by an interrupted write)")
