"""Python side of the native mesh renderer (``native/dhp_render.c``), loaded with ctypes.

The wrapper is the safety boundary: it checks shapes, dtypes, contiguity, index ranges and
finiteness before the C code sees a pointer, so C never reads or writes out of bounds. Scratch
buffers (depth, shade, vertex normals) belong to the :class:`MeshRenderer` and are reused
across calls, so rendering allocates nothing per frame; use one renderer per thread.

Depth convention: ``vertices[:, 2]`` grows towards the viewer (larger = nearer), as in the
landmarks and dense vertices of :class:`~dense_head_pose.pipeline.results.Face`.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import native
from ..errors import RendererUnavailableError
from .results import Face, compute_vertices

ENV_VAR = "DENSE_HEAD_POSE_RENDER_LIB"
ABI_VERSION = 1


class _Style(ctypes.Structure):
    _fields_ = [
        ("color", ctypes.c_float * 3),
        ("alpha", ctypes.c_float),
        ("ambient", ctypes.c_float),
        ("n_lights", ctypes.c_int),
        ("light_dir", (ctypes.c_float * 3) * 2),
        ("light_intensity", ctypes.c_float * 2),
        ("specular", ctypes.c_float),
    ]


@dataclass(frozen=True)
class RenderStyle:
    """Look of the rendered mesh. Directions point towards the light in image axes
    (x right, y down, z towards the viewer); colours in the image's channel order (BGR)."""

    color: tuple[float, float, float] = (0.85, 0.85, 0.85)
    alpha: float = 0.65
    ambient: float = 0.35
    lights: tuple[tuple[float, float, float], ...] = ((0.0, -0.3, 1.0), (-0.6, -0.2, 0.4))
    intensities: tuple[float, ...] = (0.55, 0.2)
    specular: float = 0.1
    """Blinn-Phong highlight intensity (exponent 8, fixed in C for speed)."""

    def __post_init__(self) -> None:
        values = [*self.color, self.alpha, self.ambient, self.specular,
                  *(c for d in self.lights for c in d), *self.intensities]
        if not all(np.isfinite(values)):
            raise ValueError("render style values must be finite")
        if len(self.lights) > 2 or len(self.lights) != len(self.intensities):
            raise ValueError("up to two lights, one intensity each")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")

    def to_c(self) -> _Style:
        """The C struct of this style."""
        s = _Style()
        s.color[:] = self.color
        s.alpha, s.ambient = self.alpha, self.ambient
        s.n_lights = len(self.lights)
        for i, (d, k) in enumerate(zip(self.lights, self.intensities)):
            s.light_dir[i][:] = d
            s.light_intensity[i] = k
        s.specular = self.specular
        return s


def library_candidates() -> list[Path]:
    """Where the shared library is looked for: ``$DENSE_HEAD_POSE_RENDER_LIB``, then the
    package directory (pip builds ``_dhp_render*.so`` there, colcon ``libdhp_render.so``)."""
    return native.library_candidates("render", ENV_VAR)


def load_library(path: Path | None = None) -> ctypes.CDLL:
    """Load and type the renderer library, or raise :class:`RendererUnavailableError`."""
    lib = native.load("render", ENV_VAR, ABI_VERSION, "renderer", RendererUnavailableError,
                      path)
    lib.dhp_render_scratch_pixels.restype = ctypes.c_long
    lib.dhp_render_scratch_pixels.argtypes = [ctypes.c_int, ctypes.c_int]
    f = lib.dhp_render_meshes
    f.restype = ctypes.c_long
    f.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_long,
                  ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                  ctypes.c_void_p, ctypes.c_int,
                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                  ctypes.POINTER(_Style)]
    return lib


@dataclass
class _Scratch:
    depth: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    shade: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    normals: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))

    def ensure(self, pixels: int, vertex_slots: int) -> None:
        if self.depth.size < pixels:
            self.depth = np.empty(pixels, np.float32)
            self.shade = np.empty(pixels, np.float32)
        if self.normals.size < vertex_slots * 4:
            self.normals = np.empty(vertex_slots * 4, np.float32)


class MeshRenderer:
    """Render lit meshes over BGR images with the native rasteriser."""

    def __init__(self, style: RenderStyle | None = None, library: Path | None = None) -> None:
        self._lib = load_library(library)
        self.style = style or RenderStyle()
        self._scratch = _Scratch()

    @property
    def style(self) -> RenderStyle:
        """The current :class:`RenderStyle`."""
        return self._style

    @style.setter
    def style(self, style: RenderStyle) -> None:
        self._style = style
        self._c_style = style.to_c()

    def render(self, image: np.ndarray, vertices: np.ndarray | Sequence[np.ndarray],
               triangles: np.ndarray) -> int:
        """Draw one ``(N, 3)`` mesh or several (a ``(M, N, 3)`` array or a list of them) into
        ``image`` in place; returns the number of covered pixels.

        Raises ``ValueError`` / ``TypeError`` on anything C must not see.
        """
        _check_image(image)
        verts = _stack_vertices(vertices)
        tris = _check_triangles(triangles, verts.shape[1])
        h, w = image.shape[:2]
        m, n = verts.shape[:2]
        if m == 0 or n == 0 or len(tris) == 0:
            return 0
        self._scratch.ensure(self._lib.dhp_render_scratch_pixels(h, w), m * n)
        covered = self._lib.dhp_render_meshes(
            image.ctypes.data, h, w, image.strides[0], verts.ctypes.data, n, m,
            tris.ctypes.data, len(tris), self._scratch.depth.ctypes.data,
            self._scratch.shade.ctypes.data, self._scratch.normals.ctypes.data,
            ctypes.byref(self._c_style))
        if covered < 0:
            raise ValueError("the renderer refused its arguments")
        return int(covered)

    def render_faces(self, image: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Draw the dense mesh of every face (one z-buffer: nearer faces hide farther ones)."""
        if faces:
            model = faces[0]._model
            if model is None:
                raise ValueError("faces carry no model: cannot get the mesh triangles")
            compute_vertices(faces)  # all faces in one pass over the model's weights
            self.render(image, [f.vertices for f in faces], model.triangles)
        return image


#: Largest image side (native/dhp_render.h): pixel coordinates are exact floats up to it.
MAX_SIDE = 1 << 24


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")
    if image.shape[0] > MAX_SIDE or image.shape[1] > MAX_SIDE:
        raise ValueError(f"image of {image.shape[1]}x{image.shape[0]}: the renderer takes "
                         f"sides up to {MAX_SIDE} pixels")
    if image.strides[1] != 3 or image.strides[2] != 1 or image.strides[0] < 3 * image.shape[1]:
        raise ValueError("image rows must be contiguous BGR pixels (use np.ascontiguousarray)")
    if not image.flags.writeable:
        raise ValueError("image is read-only")


def _stack_vertices(vertices: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(vertices, np.ndarray):
        verts = vertices[None] if vertices.ndim == 2 else vertices
        arrays = None
    else:
        arrays = list(vertices)
        if not arrays:
            return np.empty((0, 0, 3), np.float32)
        for a in arrays:
            _check_vertex_array(a, 2)
        if len({a.shape for a in arrays}) != 1:
            raise ValueError("all meshes must have the same number of vertices")
        verts = np.stack(arrays)  # one copy, contiguous
    _check_vertex_array(verts, 3)
    if arrays is None and not verts.flags.c_contiguous:
        raise ValueError("vertices must be C-contiguous (use np.ascontiguousarray)")
    if not np.isfinite(verts).all():
        raise ValueError("vertices contain NaN or infinity")
    return verts


def _check_vertex_array(a: object, ndim: int) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"vertices must be numpy arrays, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"vertices must be float32, got {a.dtype}")
    if a.ndim != ndim or a.shape[-1] != 3:
        raise ValueError(f"vertices must be (N, 3) per mesh, got {a.shape}")


def _check_triangles(triangles: object, n_vertices: int) -> np.ndarray:
    if not isinstance(triangles, np.ndarray):
        raise TypeError(f"triangles must be a numpy array, got {type(triangles).__name__}")
    if triangles.dtype != np.int32:
        raise TypeError(f"triangles must be int32, got {triangles.dtype}")
    if triangles.ndim != 2 or triangles.shape[1] != 3:
        raise ValueError(f"triangles must be (M, 3), got {triangles.shape}")
    if not triangles.flags.c_contiguous:
        raise ValueError("triangles must be C-contiguous (use np.ascontiguousarray)")
    if triangles.size and (int(triangles.min()) < 0 or int(triangles.max()) >= n_vertices):
        raise ValueError(f"triangle indices must be in [0, {n_vertices})")
    return triangles
