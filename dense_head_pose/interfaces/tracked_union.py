"""The union of several cameras' tracked-face lists, as REP-155's one
``/humans/faces/tracked`` needs it (see :mod:`dense_head_pose.ros.tracked_merger`).

Plain Python, so the live merger node and the bag processor apply one rule: each source's
latest list counts until it is ``stale_after`` seconds old, and the union lists every fresh
source's ids, source by source, each id once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: How long a source's latest list counts (seconds): the merger node's ``stale_after``
#: default, and the bag processor's rule.
STALE_AFTER_S = 1.0
#: The range of ``stale_after`` (seconds).
STALE_AFTER_RANGE = (0.0, 3600.0)


@dataclass
class TrackedUnion:
    """The union of several sources' id lists, each dropped once ``stale_after`` s old.
    Plain Python: the merging rule, apart from DDS."""

    stale_after: float = STALE_AFTER_S
    _lists: dict[str, tuple[float, list[str]]] = field(default_factory=dict)

    def update(self, source: str, ids: list[str], now: float) -> list[str]:
        """``source`` says its faces are ``ids``; the union now."""
        self._lists[source] = (now, list(ids))
        return self.union(now)

    def expire(self, now: float) -> bool:
        """Drop the stale lists; whether any was dropped (then the union changed)."""
        stale = [s for s, (t, _) in self._lists.items() if now - t > self.stale_after]
        for source in stale:
            del self._lists[source]
        return bool(stale)

    def union(self, now: float) -> list[str]:
        """Every fresh source's ids, source by source (sorted by name), each id once."""
        self.expire(now)
        out: dict[str, None] = {}
        for source in sorted(self._lists):
            out.update(dict.fromkeys(self._lists[source][1]))
        return list(out)

    def sources(self) -> list[str]:
        return sorted(self._lists)
