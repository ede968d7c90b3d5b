"""Writing the pack's files: verified through a temporary file, copied from a folder or
downloaded, never leaving a file that looks complete and is not."""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import ModelError
from .manifest import HASH_SUFFIX, MANIFEST_NAME, Pinned, load_manifest, manifest_path
from .verification import check_file, not_a_file, sha256

_CHUNK = 1 << 20
DOWNLOAD_TIMEOUT_S = 60.0


def copy_checked(src: Path, out: Path, entry: Pinned) -> None:
    """Copy ``src`` to ``out`` after checking that it is a regular file of the pinned size
    (a wrong file is refused before any byte is copied, however large it is)."""
    problem = not_a_file(src)
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
            digest = sha256(tmp)
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
def write_with_hash(target: Path, produce: Callable[[Path], None]) -> None:
    """Write a :data:`LOCAL_FILES` file as :func:`write_verified` does, its SHA-256
    recorded beside it first: an interrupted write leaves the old file (or none) and a
    record that does not match it, which the load refuses with the command that repairs
    it, never a file that passes for what it is not."""
    write_verified(target, produce, record_hash=True)


