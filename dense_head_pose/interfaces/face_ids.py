"""ROS4HRI face ids: strings for the tracker's integer ids.

REP-155 names every face with a string id (its topics ``/humans/faces/<id>/...`` and TF
frames ``face_<id>``); ros4hri's detectors use 5 random lowercase letters, or ``f00001``-style
for reproducible runs. The live node and the bag processor name faces the same way.
"""

from __future__ import annotations

import random
import string
import threading
from collections import deque

from .names import TOKEN


def id_prefix_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a face id prefix, or None."""
    if isinstance(value, str) and (not value or TOKEN.fullmatch(value)):
        return None
    text = repr(value)
    text = text if len(text) <= 60 else f"{text[:60]}... ({len(text)} characters)"
    return ("must be a letter, then letters, digits and '_' (at most 32: a part of topic "
            f"and frame names), got {text}")


class FaceIds:
    """String ids for the core tracker's integer ids: random letters or ``f00001``.

    A name is kept while its face may come back (the node calls :meth:`forget` when its
    topics are retired); the last ``remember`` names ever given are never given again.
    Thread-safe: the estimation thread names faces, the executor forgets them."""

    def __init__(self, deterministic: bool = False, seed: int | None = None,
                 prefix: str = "", remember: int = 100_000) -> None:
        self.deterministic = deterministic
        self.prefix = prefix
        self._rng = random.Random(seed)
        self._names: dict[int, str] = {}
        self._keys: dict[str, int] = {}
        self._used: set[str] = set()
        self._order: deque[str] = deque()
        self._remember = remember
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, track_id: int | None) -> str:
        """The string id of a tracked face (stable for the same ``track_id``)."""
        key = int(track_id or 0)
        with self._lock:
            name = self._names.get(key)
            if name is None:
                name = self._new_name()
                self._names[key], self._keys[name] = name, key
            return name

    def _new_name(self) -> str:
        name = None
        while name is None or name in self._used:
            if self.deterministic:
                self._count += 1
                name = f"{self.prefix}f{self._count:05d}"
            else:
                name = self.prefix + "".join(self._rng.choices(string.ascii_lowercase, k=5))
        self._used.add(name)
        self._order.append(name)
        while len(self._order) > self._remember:
            self._used.discard(self._order.popleft())
        return name

    def forget(self, name: str) -> None:
        """The face ``name`` is gone for good: drop its entry (the name is not reused)."""
        with self._lock:
            key = self._keys.pop(name, None)
            if key is not None:
                self._names.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)


def tf_name(ids: FaceIds | None, prefix: str, track_id: int | None) -> str:
    """The ``<id>`` of a face's TF frames ``face_<id>``: its ROS4HRI id when that interface
    is on (``ids``; already prefixed), else ``prefix`` and its track number. The live node
    and the bag processor name frames by this one rule."""
    return ids(track_id) if ids is not None else f"{prefix}{track_id}"
