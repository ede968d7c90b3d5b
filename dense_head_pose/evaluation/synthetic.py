"""Heads that turn with a known pose, made from a real face and its own fitted 3DMM.

A still image shows one pose. To know the truth of a head turning out of the image plane
(yaw, pitch), the face is fitted once, and its dense mesh is turned about the head's centre
in model space and drawn again: every pixel of the turned face takes the colour of the same
point of the face in the still, found through the fitted camera (a piecewise-affine warp by
the mesh, z-buffered). Where the face was and no longer is, the still is
inpainted, so no ghost of the first pose stays. The rotation applied is the truth: the
estimate of frame ``k`` should be the estimate of the unturned frame composed with it.

Used by ``dense-head-pose stability`` for its turning clips (:mod:`.stability`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..pipeline.results import Face


def axis_rotation(axis: str, degrees: float) -> np.ndarray:
    """Rotation of the face model about its own axis: ``yaw`` about the vertical (y) axis,
    ``pitch`` about the horizontal (x) axis, ``roll`` about the axis out of the face (z).
    Model space: x to the subject's left, y up, z out of the face."""
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    if axis == "yaw":
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    if axis == "pitch":
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    if axis == "roll":
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    raise ValueError(f"axis must be yaw, pitch or roll, got {axis!r}")


class TurningHead:
    """A face of a still image, ready to be drawn turned by any rotation of its model."""

    def __init__(self, image: np.ndarray, face: Face) -> None:
        self.image = image
        self.face = face
        self.model_vertices = face.model_vertices().astype(np.float64)
        self.triangles = np.asarray(face._require_model().triangles, np.int64)
        camera = np.asarray(face.camera, np.float64)
        self.linear, self.offset = camera[:, :3], camera[:, 3]
        # the head's centre: turned about the model origin, moved so the centroid stays put
        self.centre = self.model_vertices.mean(axis=0)
        source = self.model_vertices @ self.linear.T + self.offset
        self.source_uv = source[:, :2]
        mask = np.zeros(image.shape[:2], np.uint8)
        _fill(mask, source, self.triangles)
        mask = cv2.dilate(mask, np.ones((7, 7), np.uint8))
        self.background = cv2.inpaint(image, mask, 7, cv2.INPAINT_TELEA)

    def camera(self, rotation: np.ndarray) -> np.ndarray:
        """The 3x4 image camera of the face turned by ``rotation`` (model space)."""
        linear = self.linear @ rotation
        offset = self.offset + self.linear @ self.centre - linear @ self.centre
        return np.hstack([linear, offset[:, None]])

    def draw(self, rotation: np.ndarray) -> np.ndarray:
        """The still with the face turned by ``rotation`` about the head's centre."""
        camera = self.camera(rotation)
        vertices = self.model_vertices @ camera[:, :3].T + camera[:, 3]
        h, w = self.image.shape[:2]
        # only the face's box is drawn: a large still costs what its face costs
        x0, y0 = np.maximum(np.floor(vertices[:, :2].min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(vertices[:, :2].max(axis=0)).astype(int) + 2, (w, h))
        out = self.background.copy()
        if x1 <= x0 or y1 <= y0:
            return out
        local = vertices - np.array([x0, y0, 0.0])
        map_u = np.full((y1 - y0, x1 - x0), -1.0, np.float32)
        map_v = np.full((y1 - y0, x1 - x0), -1.0, np.float32)
        depth = np.full((y1 - y0, x1 - x0), -np.inf)
        _rasterise(local, self.triangles, self.source_uv, map_u, map_v, depth)
        warped = cv2.remap(self.image, map_u, map_v, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        covered = np.isfinite(depth)
        out[y0:y1, x0:x1][covered] = warped[covered]
        return out


def _fill(mask: np.ndarray, vertices: np.ndarray, triangles: np.ndarray) -> None:
    """Mark the pixels the mesh covers (its silhouette) in ``mask``."""
    points = np.round(vertices[triangles][:, :, :2]).astype(np.int32)
    cv2.fillPoly(mask, list(points), 255)


def _rasterise(vertices: np.ndarray, triangles: np.ndarray, attribute: np.ndarray,
               map_u: np.ndarray, map_v: np.ndarray, depth: np.ndarray) -> None:
    """Z-buffered rasterisation of the mesh, interpolating a 2-vector ``attribute`` per
    vertex into ``map_u``, ``map_v`` at integer pixel centres; the nearest surface (larger
    depth) wins, so the back of the head never shows through."""
    h, w = depth.shape
    front = triangles
    xy = vertices[:, :2]
    lo = np.floor(xy[front].min(axis=1)).astype(np.int64)
    hi = np.ceil(xy[front].max(axis=1)).astype(np.int64)
    size = hi - lo + 1
    inside = (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < w) & (lo[:, 1] < h)
    extent = size.max(axis=1)
    # triangles in buckets of their pixel box's side: a face of a few hundred pixels has
    # most of its triangles within 2 or 3 pixels, and few candidates are tested in vain
    for box in sorted(set(np.minimum(np.maximum(2 ** np.ceil(np.log2(np.maximum(
            extent[inside], 1))), 2), 1 << 16).astype(int).tolist())):
        chosen = np.flatnonzero(inside & (extent <= box) & (extent > box // 2 if box > 2
                                                            else True))
        step = max(1, 4_000_000 // (box * box))
        for start in range(0, len(chosen), step):
            part = chosen[start:start + step]
            _rasterise_boxes(vertices, front[part], lo[part], box, attribute, map_u, map_v,
                             depth)


def _rasterise_boxes(vertices: np.ndarray, tris: np.ndarray, lo: np.ndarray, box: int,
                     attribute: np.ndarray, map_u: np.ndarray, map_v: np.ndarray,
                     depth: np.ndarray) -> None:
    h, w = depth.shape
    dy, dx = np.mgrid[0:box, 0:box]
    px = lo[:, 0, None] + dx.reshape(1, -1)
    py = lo[:, 1, None] + dy.reshape(1, -1)
    a, b, c = (vertices[tris[:, k]] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    valid = np.abs(area) > 1e-12
    area = np.where(valid, area, 1.0)[:, None]
    w0 = ((b[:, 0, None] - px) * (c[:, 1, None] - py)
          - (b[:, 1, None] - py) * (c[:, 0, None] - px)) / area
    w1 = ((c[:, 0, None] - px) * (a[:, 1, None] - py)
          - (c[:, 1, None] - py) * (a[:, 0, None] - px)) / area
    w2 = 1.0 - w0 - w1
    hit = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9) & valid[:, None] \
        & (px >= 0) & (py >= 0) & (px < w) & (py < h)
    t, k = np.nonzero(hit)
    if t.size == 0:
        return
    b0, b1, b2 = w0[t, k], w1[t, k], w2[t, k]
    z = b0 * a[t, 2] + b1 * b[t, 2] + b2 * c[t, 2]
    pixel = py[t, k] * w + px[t, k]
    order = np.lexsort((-z, pixel))  # by pixel, nearest first
    first = np.ones(order.size, bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    keep = order[first]
    pixel, z = pixel[keep], z[keep]
    nearer = z > depth.reshape(-1)[pixel]
    keep, pixel, z = keep[nearer], pixel[nearer], z[nearer]
    uv = (b0[keep, None] * attribute[tris[t[keep], 0]] + b1[keep, None]
          * attribute[tris[t[keep], 1]] + b2[keep, None] * attribute[tris[t[keep], 2]])
    depth.reshape(-1)[pixel] = z
    map_u.reshape(-1)[pixel] = uv[:, 0]
    map_v.reshape(-1)[pixel] = uv[:, 1]
