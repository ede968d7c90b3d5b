"""Long recordings cut into time chunks processed in parallel, and the face ids joined
across the borders.

Chunk k covers the log times [start + k S, start + (k + 1) S) of its recording and starts
``warmup`` seconds earlier, unwritten, so that the trackers and filters have settled by its
first frame. The warm-up frames are also the last frames of chunk k - 1: a face id of chunk
k is the id of chunk k - 1 whose poses in those shared frames are nearest (same camera,
mean distance of the head positions under :data:`JOIN_DISTANCE_M`, over at least
:data:`JOIN_MIN_FRAMES` frames); an id not joined gets a name no earlier chunk used.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

from ..recordings.rows import FaceRow
from ..recordings.summary import Window

#: Head positions of two ids further apart than this (mean over the shared frames) are two
#: people.
JOIN_DISTANCE_M = 0.15
JOIN_MIN_FRAMES = 3
_NUMBERED = re.compile(r"^(.*f)(\d{5,})$")  # deterministic ids: PREFIX + f00001


def windows(first_ns: int, last_ns: int, chunk_s: float, warmup_s: float) -> list[Window]:
    """The chunks of a recording spanning [``first_ns``, ``last_ns``]; one window (no
    split) when it is not longer than ``chunk_s`` plus half a chunk."""
    length = chunk_s * 1e9
    count = max(1, math.floor((last_ns - first_ns) / length + 0.5))
    if count == 1:
        return []
    starts = [first_ns + round(k * length) for k in range(count)]
    return [Window(start=s, stop=starts[k + 1] if k + 1 < count else None,
                   warmup=0 if k == 0 else round(warmup_s * 1e9))
            for k, s in enumerate(starts)]


def _positions(rows: Sequence[FaceRow]) -> dict[tuple[str, str], dict[int, tuple]]:
    """(camera, id) -> stamp -> head position."""
    out: dict[tuple[str, str], dict[int, tuple]] = defaultdict(dict)
    for row in rows:
        out[row.camera, row.id][row.stamp_ns] = (row.x, row.y, row.z)
    return out


class IdJoiner:
    """Joins the ids of a recording's chunks, fed in order."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self._previous: list[FaceRow] = []  # the previous chunk's rows, renamed
        self._next_number: dict[str, int] = defaultdict(int)

    def _fresh(self, name: str) -> str:
        match = _NUMBERED.match(name)
        if match:
            prefix, digits = match.group(1), match.group(2)
            number = max(self._next_number[prefix], int(digits))
            while f"{prefix}{number:0{len(digits)}d}" in self.used:
                number += 1
            return f"{prefix}{number:0{len(digits)}d}"
        k, fresh = 2, name
        while fresh in self.used:
            fresh, k = f"{name}-{k}", k + 1
        return fresh

    def _remember(self, name: str) -> None:
        self.used.add(name)
        match = _NUMBERED.match(name)
        if match:
            prefix = match.group(1)
            self._next_number[prefix] = max(self._next_number[prefix],
                                            int(match.group(2)) + 1)

    def join(self, rows: list[FaceRow], warmup: list[FaceRow]) -> list[FaceRow]:
        """The next chunk's rows with ids joined to the previous chunks'."""
        mapping = self._match(_positions(warmup), _positions(self._previous)) \
            if self._previous else {}
        for camera, name in sorted({(r.camera, r.id) for r in rows + warmup}):
            if (camera, name) not in mapping:
                fresh = name if name not in self.used else self._fresh(name)
                mapping[camera, name] = fresh
            self._remember(mapping[camera, name])
        joined = [r._replace(id=mapping[r.camera, r.id]) for r in rows]
        self._previous = joined
        return joined

    @staticmethod
    def _match(new: dict, old: dict) -> dict[tuple[str, str], str]:
        pairs = []
        for (camera, name), track in new.items():
            for (old_camera, old_name), old_track in old.items():
                if camera != old_camera:
                    continue
                shared = track.keys() & old_track.keys()
                if len(shared) < JOIN_MIN_FRAMES:
                    continue
                distance = sum(math.dist(track[s], old_track[s]) for s in shared) / len(shared)
                if distance < JOIN_DISTANCE_M:
                    pairs.append((distance, (camera, name), old_name))
        mapping: dict[tuple[str, str], str] = {}
        taken: set[str] = set()
        for _, key, old_name in sorted(pairs):
            if key not in mapping and old_name not in taken:
                mapping[key] = old_name
                taken.add(old_name)
        return mapping
