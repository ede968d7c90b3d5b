"""rviz2 markers: landmark points and outlines, and a decimated face mesh.

rclpy builds a Python object per ``geometry_msgs/Point``, so a marker of the full 76,073
triangle mesh (228,219 points) costs tens of milliseconds per frame. The mesh marker uses a
vertex-clustering decimation of the model computed once: vertices are merged within cubic
cells of the mean face, triangles that collapse are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..pipeline.drawing import LANDMARK_GROUPS
from ..pipeline.results import Face


def decimate(vertices: np.ndarray, triangles: np.ndarray, cell: float
             ) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: ``(kept vertex indices, triangles over positions in that list)``.

    ``cell`` is the cube side in the units of ``vertices``. Each cell keeps the vertex
    nearest its centroid; triangles whose corners fall in fewer than three cells vanish.
    """
    keys = np.floor((vertices - vertices.min(0)) / cell).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)
    centroids = np.zeros((len(counts), 3))
    np.add.at(centroids, cluster, vertices)
    centroids /= counts[:, None]
    dist = np.linalg.norm(vertices - centroids[cluster], axis=1)
    order = np.lexsort((dist, cluster))
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    representative = order[first]  # one vertex per cluster, clusters in increasing order
    tri = cluster[triangles]
    keep = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    tri = tri[keep]
    canonical = np.sort(tri, axis=1)
    _, unique_rows = np.unique(canonical, axis=0, return_index=True)
    return representative, tri[np.sort(unique_rows)].astype(np.int32)


# Generated rclpy messages keep each field in a slot named after it with a leading underscore
# (rosidl_generator_py, every distro since Dashing) and check types in the property setters.
# Filling the slots of a bare instance skips ~1 us of checks per point, 6x faster for the
# thousands of points of a mesh marker; the values are plain floats from numpy, as checked.
_FAST_POINTS = {"_x", "_y", "_z"} <= set(getattr(Point, "__slots__", ()))
_HAS_CHECK_FIELDS = "_check_fields" in getattr(Point, "__slots__", ())


def _points(xyz: np.ndarray) -> list[Point]:
    if not _FAST_POINTS:
        return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, np.float64).tolist()]
    out = []
    new = Point.__new__
    for x, y, z in np.asarray(xyz, np.float64).tolist():
        p = new(Point)
        p._x, p._y, p._z = x, y, z
        if _HAS_CHECK_FIELDS:
            p._check_fields = False
        out.append(p)
    return out


_OUTLINE_PAIRS = np.array([(i, i + 1) for s, e, _ in LANDMARK_GROUPS for i in range(s, e - 1)]
                          + [(e - 1, s) for s, e, closed in LANDMARK_GROUPS if closed])


def landmark_markers(faces: Sequence[Face], header: Header, lifetime_s: float = 0.5
                     ) -> MarkerArray:
    """Per face: its 68 landmarks (spheres) and their outline (lines), metric, camera frame.

    The array starts with DELETEALL so markers of faces that left the view disappear.
    """
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    for face in faces:
        pts = face.landmarks_in_camera()
        markers.append(Marker(
            header=header, ns="landmarks", id=int(face.id or 0), type=Marker.SPHERE_LIST,
            action=Marker.ADD, scale=Vector3(x=0.004, y=0.004, z=0.004),
            color=ColorRGBA(r=0.1, g=1.0, b=0.2, a=1.0), points=_points(pts), lifetime=lifetime))
        markers[-1].pose.orientation.w = 1.0
        markers.append(Marker(
            header=header, ns="outline", id=int(face.id or 0), type=Marker.LINE_LIST,
            action=Marker.ADD, scale=Vector3(x=0.0015), color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=0.8),
            points=_points(pts[_OUTLINE_PAIRS.reshape(-1)]), lifetime=lifetime))
        markers[-1].pose.orientation.w = 1.0
    return MarkerArray(markers=markers)


class MeshMarkerBuilder:
    """Builds the decimated TRIANGLE_LIST marker of all faces of a frame."""

    def __init__(self, dense_mean: np.ndarray, triangles: np.ndarray, cell: float) -> None:
        self.vertex_indices, self.triangles = decimate(dense_mean, triangles, cell)

    @property
    def n_triangles(self) -> int:
        """Triangles per face in the marker."""
        return len(self.triangles)

    def __call__(self, faces: Sequence[Face], header: Header) -> Marker:
        """The marker (empty points when there is no face, which clears the display)."""
        corners = [face.vertices_in_camera(self.vertex_indices)[self.triangles].reshape(-1, 3)
                   for face in faces]
        xyz = np.concatenate(corners) if corners else np.empty((0, 3), np.float32)
        marker = Marker(header=header, ns="face_mesh", id=0, type=Marker.TRIANGLE_LIST,
                        action=Marker.ADD, scale=Vector3(x=1.0, y=1.0, z=1.0),
                        color=ColorRGBA(r=0.85, g=0.85, b=0.85, a=1.0), points=_points(xyz))
        marker.pose.orientation.w = 1.0
        return marker
