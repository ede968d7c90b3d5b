"""The far look: faces of people across the room, found for a fraction of the cost of
looking at the whole frame at its own resolution.

The near look (320x240) cannot be sure of a face narrower than :data:`NEAR_MIN_FACE` of its
input pixels, but it is not blind to one: its finest priors (10 to 48 input pixels, strides
8 and 16) still score higher where such a face is than on the background around it. So the
far look is a cascade:

1. **Proposals**: the local maxima of the near look's scores on those two levels, the best
   (of the plain look, and of the mirrored one when it ran) outside the faces the near look
   found, more the more the near look shrinks the frame (:func:`proposal_count`);
2. **Verification**: each proposal's neighbourhood, cut from the frame as the far look sees
   it (the frame at most :data:`FAR_LONG_SIDE` pixels on its longer side), a square of
   :data:`FAR_CROP` pixels there (twice that for a proposal of the coarser level), goes
   through the detector scaled to :data:`FAR_INPUT` pixels: a face of 30 pixels is then
   45 wide, where the detector scores small faces as it scores faces close by. The
   proposal with the best score is looked at mirrored too when nothing is found.
3. A face kept scores at least :data:`FAR_MIN_SCORE` (the detector, looking closely at a
   few places, scores logos and highlights there above its usual threshold; most small
   faces score far above it), is found again, at the detector's threshold, in a wider
   neighbourhood (:data:`CONFIRM_CONTEXT` times its size), mirrored or, away from the
   frame's edges (:data:`EDGE_MARGIN`), as it is (a flag's stars at a frame's corner
   passed for a face at 0.99 in the first framing and scored nothing mirrored in this
   one), is too small for the near look to be sure of, and is not part of a face the near
   look found (an ear, an earring).

Cost: at most :data:`FAR_PROPOSALS` inputs of :data:`FAR_INPUT` squared pixels, whatever the
frame's size (docs/accuracy.md and docs/performance.md measure it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

#: The far look sees the frame at most this many pixels on its longer side.
FAR_LONG_SIDE = 1280
#: Faces narrower than this many pixels of the near look's input are the far look's.
NEAR_MIN_FACE = 48.0
#: The far look runs when it would see the frame at least this many times larger than the
#: near look does.
FAR_MIN_GAIN = 1.5
#: The least score of a far-look face (or the detector's threshold, if higher).
FAR_MIN_SCORE = 0.75
#: Places looked at closely per far look, at most.
FAR_PROPOSALS = 4
#: The side of a proposal's neighbourhood at the far look's scale (pixels; twice that for a
#: proposal of the coarser level), and the detector's input it is enlarged to (square).
FAR_CROP = 128
FAR_INPUT = 192
#: A far face is confirmed in the mirror image of a neighbourhood this many times its size.
CONFIRM_CONTEXT = 3.0
#: Near an edge (this fraction of the frame's smaller side), only the mirror confirms.
EDGE_MARGIN = 0.05
#: A proposal's neighbourhood is at least this many times the box its prior regressed.
BOX_CONTEXT = 2.0
#: The near look's levels that propose: (stride, prior sides in input pixels), the
#: detector's first two.
_LEVELS = ((8, (10, 16, 24)), (16, (32, 48)))


@dataclass(frozen=True)
class Proposal:
    """A place the near look scored higher than around it: centre (image pixels), the
    side of the neighbourhood to look at (image pixels), and the near score."""

    x: float
    y: float
    side: float
    score: float


def far_scale(width: int, height: int) -> float:
    """How much the far look scales a ``width`` x ``height`` frame (at most 1)."""
    return min(1.0, FAR_LONG_SIDE / max(width, height))


def _peaks(scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``count`` highest local maxima (3x3) of a 2-D score map: columns, rows, scores."""
    ys, xs = np.nonzero(scores >= cv2.dilate(scores, np.ones((3, 3), np.uint8)))
    order = np.argsort(-scores[ys, xs], kind="stable")[:count]
    return xs[order], ys[order], scores[ys[order], xs[order]]


def proposals(scores: np.ndarray, boxes: np.ndarray, mirrored: bool,
              input_size: tuple[int, int],
              to_image: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
              scale: float, count: int = FAR_PROPOSALS) -> list[Proposal]:
    """The best ``count`` proposals of one near look's face ``scores`` and decoded
    ``boxes`` (its prior order: level by level, row-major, priors of a cell together;
    boxes as (cx, cy, w, h) relative to the input); ``to_image`` maps input pixels to image
    pixels; ``scale``: the far look's (:func:`far_scale`). A proposal is centred on the box
    its best prior regressed, in a neighbourhood of the level's side (:data:`FAR_CROP`) or
    :data:`BOX_CONTEXT` times that box, if larger."""
    in_w, in_h = input_size
    out: list[Proposal] = []
    start = 0
    for level, (stride, sizes) in enumerate(_LEVELS):
        fw, fh = -(-in_w // stride), -(-in_h // stride)
        n = len(sizes)
        cells = scores[start:start + fw * fh * n].reshape(fh, fw, n)
        xs, ys, values = _peaks(np.ascontiguousarray(cells.max(axis=2), np.float32), count)
        index = start + (ys * fw + xs) * n + cells[ys, xs].argmax(axis=1)
        start += fw * fh * n
        box = boxes[index] * np.array([in_w, in_h, in_w, in_h], np.float64)
        u, v = box[:, 0], box[:, 1]
        if mirrored:
            u = in_w - u
        ix, iy = to_image(u, v)
        wide = np.abs(to_image(u + box[:, 2], v)[0] - ix)
        high = np.abs(to_image(u, v + box[:, 3])[1] - iy)
        side = np.maximum(FAR_CROP * (level + 1) / scale,
                          BOX_CONTEXT * np.maximum(wide, high))
        out += [Proposal(float(x), float(y), float(d), float(s))
                for x, y, d, s in zip(ix, iy, side, values)]
    out.sort(key=lambda p: -p.score)
    return out[:count]


def proposal_count(gain: float) -> int:
    """Places looked at when the far look sees the frame ``gain`` times larger than the near
    look: one up to twice (VGA), three up to four times (720p, 1080p), :data:`FAR_PROPOSALS`
    beyond. The more the near look shrinks a face, the less its scores single it out."""
    return 1 if gain <= 2.0 else 3 if gain <= 4.0 else FAR_PROPOSALS


def merge_proposals(found: list[Proposal], count: int,
                    faces: Sequence[np.ndarray] = ()) -> list[Proposal]:
    """The best ``count`` of several looks' proposals (the plain and the mirrored near look
    propose the same places, and so do both levels for a face between their sizes) that are
    not inside one of the ``faces`` found (boxes). Proposals within a quarter of the larger
    neighbourhood of each other are one place, looked at in the larger neighbourhood (a
    face between the levels' sizes is whole in it)."""
    kept: list[Proposal] = []
    for p in sorted(found, key=lambda p: -p.score):
        if any(b[0] <= p.x <= b[2] and b[1] <= p.y <= b[3] for b in faces):
            continue
        same = next((i for i, q in enumerate(kept)
                     if math.hypot(p.x - q.x, p.y - q.y) <= 0.25 * max(p.side, q.side)), None)
        if same is None:
            kept.append(p)
        elif p.side > kept[same].side:
            kept[same] = Proposal(kept[same].x, kept[same].y, p.side, kept[same].score)
    return kept[:count]


def neighbourhood(image: np.ndarray, proposal: Proposal) -> tuple[np.ndarray, int, int]:
    """The square around ``proposal``, moved inside the frame where it would cross an edge
    (the detector takes repeated border pixels for patterns: a flag at a frame's corner
    became a face), and its top-left corner in the image. A frame smaller than the square
    is padded with its border pixels."""
    height, width = image.shape[:2]
    side = max(8, round(proposal.side))
    x0 = min(max(round(proposal.x - side / 2), 0), max(width - side, 0))
    y0 = min(max(round(proposal.y - side / 2), 0), max(height - side, 0))
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + side), min(height, y0 + side)
    if cx1 <= cx0 or cy1 <= cy0:
        return np.zeros((side, side, 3), np.uint8), x0, y0
    crop = image[cy0:cy1, cx0:cx1]
    pads = (cy0 - y0, y0 + side - cy1, cx0 - x0, x0 + side - cx1)
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_REPLICATE)
    return crop, x0, y0


def far_face(box: np.ndarray, near_scale: float) -> bool:
    """Whether a box is a face of the far look's: a whole pixel at least, and too small for
    the near look (of scale ``near_scale``) to be sure of."""
    width, height = box[2] - box[0], box[3] - box[1]
    return width >= 1.0 and height >= 1.0 and width * near_scale < NEAR_MIN_FACE


def at_edge(box: np.ndarray, width: int, height: int) -> bool:
    """Whether a box lies within :data:`EDGE_MARGIN` of the frame's smaller side of an
    edge."""
    margin = EDGE_MARGIN * min(width, height)
    return bool(box[0] < margin or box[1] < margin or box[2] > width - margin
                or box[3] > height - margin)


def far_input() -> tuple[int, int]:
    """The detector's input for one proposal."""
    return FAR_INPUT, FAR_INPUT


def cost_in_near_looks(near_input: tuple[int, int], gain: float) -> float:
    """What a far look costs, in near looks (the ratio of their input areas), when it sees
    the frame ``gain`` times larger than the near look."""
    w, h = far_input()
    return proposal_count(gain) * w * h / (near_input[0] * near_input[1])
