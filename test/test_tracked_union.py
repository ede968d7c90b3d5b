"""The union of several cameras' tracked-face lists (the merger's and the bag processor's
rule for REP-155's one ``/humans/faces/tracked``)."""

from __future__ import annotations

from dense_head_pose.interfaces.tracked_union import TrackedUnion


def test_tracked_union_merges_and_forgets_stale_lists() -> None:
    union = TrackedUnion(stale_after=1.0)
    assert union.update("/front/t", ["front_a", "front_b"], 0.0) == ["front_a", "front_b"]
    assert union.update("/back/t", ["back_c"], 0.2) == ["back_c", "front_a", "front_b"]
    assert union.update("/front/t", ["front_b"], 0.5) == ["back_c", "front_b"]  # a left
    assert union.update("/back/t", ["front_b"], 0.6) == ["front_b"]  # an id once
    assert not union.expire(1.4)
    assert union.expire(1.55)  # /front/t last spoke at 0.5, /back/t at 0.6
    assert union.union(1.55) == ["front_b"] and union.sources() == ["/back/t"]
    assert union.union(2.7) == [] and union.sources() == []
