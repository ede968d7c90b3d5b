"""A plain numpy rasteriser with the native renderer's exact conventions.

It exists to check the C code (the tests compare the two on real meshes). Same maths: area-
weighted vertex normals, per-vertex Blinn-Phong shade, barycentric interpolation at integer
pixel centres, front faces only, larger z wins, one composite. Vectorised over (triangle,
candidate pixel) pairs, in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dense_head_pose.pipeline.render import RenderStyle

_EPS = -1e-5


def vertex_shade(vertices: np.ndarray, triangles: np.ndarray, style: RenderStyle) -> np.ndarray:
    """Per-vertex Gouraud shade of one mesh, as the C code computes it."""
    v = vertices.astype(np.float64)
    a, b, c = (v[triangles[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)
    normals = np.zeros_like(v)
    for i in range(3):
        np.add.at(normals, triangles[:, i], face_normals)
    length = np.linalg.norm(normals, axis=1)
    valid = length > 0
    normals[valid] /= length[valid, None]
    shade = np.full(len(v), style.ambient)
    for direction, intensity in zip(style.lights, style.intensities):
        light = np.asarray(direction, np.float64)
        light /= np.linalg.norm(light) or 1.0
        half = light + np.array([0.0, 0.0, 1.0])
        half /= np.linalg.norm(half) or 1.0
        d = np.maximum(normals @ light, 0.0)
        h = np.where(d > 0, np.maximum(normals @ half, 0.0), 0.0)
        shade += np.where(valid, intensity * d + style.specular * h**8, 0.0)
    return shade


def rasterise(meshes: Sequence[np.ndarray], triangles: np.ndarray, height: int, width: int,
              style: RenderStyle) -> tuple[np.ndarray, np.ndarray]:
    """Depth-resolved shade image and coverage mask of all meshes (one z-buffer)."""
    pix, zs, ss = [], [], []
    for vertices in meshes:
        v = vertices.astype(np.float64)
        shade = vertex_shade(vertices, triangles, style)
        a, b, c = (v[triangles[:, i]] for i in range(3))
        lo = np.minimum(np.minimum(a, b), c)[:, :2]
        hi = np.maximum(np.maximum(a, b), c)[:, :2]
        x0 = np.ceil(np.clip(lo[:, 0], 0, width - 1)).astype(np.int64)
        x1 = np.floor(np.clip(hi[:, 0], 0, width - 1)).astype(np.int64)
        y0 = np.ceil(np.clip(lo[:, 1], 0, height - 1)).astype(np.int64)
        y1 = np.floor(np.clip(hi[:, 1], 0, height - 1)).astype(np.int64)
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        on_screen = (hi[:, 0] >= 0) & (lo[:, 0] <= width - 1) & (hi[:, 1] >= 0) \
            & (lo[:, 1] <= height - 1)
        keep = np.flatnonzero(on_screen & (x0 <= x1) & (y0 <= y1) & (area > 1e-12))
        cols = x1[keep] - x0[keep] + 1
        counts = cols * (y1[keep] - y0[keep] + 1)
        tri = np.repeat(keep, counts)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        cols_r = np.repeat(cols, counts)
        px = np.repeat(x0[keep], counts) + local % cols_r
        py = np.repeat(y0[keep], counts) + local // cols_r
        ta, tb, tc = a[tri], b[tri], c[tri]
        wa = ((tb[:, 0] - px) * (tc[:, 1] - py) - (tb[:, 1] - py) * (tc[:, 0] - px)) / area[tri]
        wb = ((tc[:, 0] - px) * (ta[:, 1] - py) - (tc[:, 1] - py) * (ta[:, 0] - px)) / area[tri]
        wc = 1.0 - wa - wb
        inside = (wa >= _EPS) & (wb >= _EPS) & (wc >= _EPS)
        tri, px, py, wa, wb, wc = (x[inside] for x in (tri, px, py, wa, wb, wc))
        t = triangles[tri]
        zs.append(wa * ta[inside, 2] + wb * tb[inside, 2] + wc * tc[inside, 2])
        ss.append(wa * shade[t[:, 0]] + wb * shade[t[:, 1]] + wc * shade[t[:, 2]])
        pix.append(py * width + px)
    shade_img = np.zeros(height * width)
    mask = np.zeros(height * width, bool)
    if pix:
        p, z, s = np.concatenate(pix), np.concatenate(zs), np.concatenate(ss)
        order = np.lexsort((-z, p))  # per pixel, nearest (largest z) first
        p, s = p[order], s[order]
        first = np.ones(len(p), bool)
        first[1:] = p[1:] != p[:-1]
        shade_img[p[first]] = s[first]
        mask[p[first]] = True
    return shade_img.reshape(height, width), mask.reshape(height, width)


def render(image: np.ndarray, meshes: Sequence[np.ndarray], triangles: np.ndarray,
           style: RenderStyle | None = None) -> np.ndarray:
    """Reference of :meth:`MeshRenderer.render`: blends the meshes over ``image`` in place
    and returns the coverage mask."""
    style = style or RenderStyle()
    h, w = image.shape[:2]
    shade, mask = rasterise(meshes, triangles, h, w, style)
    s = np.clip(shade[mask], 0.0, 1.0)[:, None]
    colour = np.clip(np.asarray(style.color), 0.0, 1.0) * 255.0 * style.alpha
    blended = (1.0 - style.alpha) * image[mask].astype(np.float64) + colour * s + 0.5
    image[mask] = blended.astype(np.uint8)
    return mask
