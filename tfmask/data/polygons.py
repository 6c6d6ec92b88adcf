"""Polygons <-> masks in one convention, shared by the polygon input formats.

Convention (labelme, CVAT and Ultralytics all draw on a canvas where pixel
column ``i`` covers ``[i, i + 1)``): a vertex ``(x, y)`` is a position in
pixel *edges*, and a pixel belongs to a polygon when its centre
``(i + 0.5, j + 0.5)`` lies inside it by the even-odd rule. So the polygon
``(2,3) (5,3) (5,7) (2,7)`` covers columns 2..4 and rows 3..6, exactly as the
box ``[2, 3, 5, 7]`` of :mod:`tfmask.annotation` does, and a ring drawn inside
another cuts a hole.

:func:`trace_rings` goes the other way: the pixel-corner outlines of a mask,
which :func:`rasterize` turns back into the very same mask. The synthetic
format writers (:mod:`tfmask.data.synth_formats`) use it; readers only
rasterize. Run the round trip::

    rings = trace_rings(mask)
    assert (rasterize(rings, mask.shape) == mask).all()
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

Ring = np.ndarray  # [K, 2] float64 (x, y) vertices in pixel edges, implicitly closed


def rasterize(rings: Sequence[np.ndarray], size_hw: Tuple[int, int]) -> np.ndarray:
    """[H, W] bool: pixels whose centre is inside the rings (even-odd rule).

    Args:
      rings: polygons, each [K, 2] (x, y) in pixel edges, K >= 1 (rings with
        fewer than 3 vertices cover nothing). Vertices may lie outside the
        image; the result is clipped to it.
      size_hw: (height, width) of the mask.
    """
    h, w = size_hw
    counts = np.zeros((h, w + 1), np.int32)
    for ring in rings:
        ring = np.asarray(ring, np.float64).reshape(-1, 2)
        if len(ring) < 3:
            continue
        xa, ya = ring[:, 0], ring[:, 1]
        xb, yb = np.roll(xa, -1), np.roll(ya, -1)
        # Each edge taken from its upper end, so an edge walked both ways (a
        # bridge of join_rings) gives bit-identical crossings that cancel.
        swap = ya > yb
        x0, y0 = np.where(swap, xb, xa), np.where(swap, yb, ya)
        x1, y1 = np.where(swap, xa, xb), np.where(swap, ya, yb)
        lo, hi = y0, y1
        # Rows whose centre j + 0.5 lies in [lo, hi): half-open, so a vertex shared
        # by two edges is counted once and horizontal edges never.
        first = np.clip(np.ceil(lo - 0.5), 0, h).astype(np.int64)
        last = np.clip(np.ceil(hi - 0.5), 0, h).astype(np.int64)
        n = np.maximum(last - first, 0)
        if not n.any():
            continue
        edge = np.repeat(np.arange(len(ring)), n)
        rows = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n) + first[edge]
        yc = rows + 0.5
        t = (yc - y0[edge]) / (y1[edge] - y0[edge])
        xc = x0[edge] + t * (x1[edge] - x0[edge])
        # Pixel i is right of the crossing when i + 0.5 > xc.
        start = np.clip(np.floor(xc + 0.5), 0, w).astype(np.int64)
        np.add.at(counts, (rows, start), 1)
    return (np.cumsum(counts, axis=1)[:, :w] % 2).astype(bool)


def _boundary_edges(mask: np.ndarray) -> np.ndarray:
    """[E, 4] int64 (x0, y0, x1, y1) directed pixel-corner edges around ``mask``.

    Each edge separates an inside pixel from an outside one, with the inside on
    its right in image coordinates (y down): outer outlines run clockwise on
    screen, holes counter-clockwise.
    """
    m = np.pad(np.asarray(mask, bool), 1)
    inside = m[1:-1, 1:-1]
    parts = []
    ys, xs = np.nonzero(inside & ~m[:-2, 1:-1])   # top edge: left to right
    parts.append(np.stack([xs, ys, xs + 1, ys], 1))
    ys, xs = np.nonzero(inside & ~m[2:, 1:-1])    # bottom edge: right to left
    parts.append(np.stack([xs + 1, ys + 1, xs, ys + 1], 1))
    ys, xs = np.nonzero(inside & ~m[1:-1, :-2])   # left edge: bottom to top
    parts.append(np.stack([xs, ys + 1, xs, ys], 1))
    ys, xs = np.nonzero(inside & ~m[1:-1, 2:])    # right edge: top to bottom
    parts.append(np.stack([xs + 1, ys, xs + 1, ys + 1], 1))
    return np.concatenate(parts).astype(np.int64)


def trace_rings(mask: np.ndarray) -> List[Ring]:
    """The pixel-corner outlines of a [H, W] bool mask, straight runs merged.

    Returns:
      Rings ([K, 2] float64 (x, y), K >= 4) whose :func:`rasterize` is ``mask``
      exactly: one per outer outline of each 8-connected part and one per
      hole, outer ones first (largest area first). Where two parts touch only
      at a corner, the outlines are kept apart (each ring turns right there).
    """
    edges = _boundary_edges(mask)
    outgoing: Dict[Tuple[int, int], List[int]] = {}
    edge_list = edges.tolist()
    for k, (x0, y0, _, _) in enumerate(edge_list):
        outgoing.setdefault((x0, y0), []).append(k)
    used = np.zeros(len(edges), bool)
    rings: List[Tuple[float, Ring]] = []
    for k0 in range(len(edges)):
        if used[k0]:
            continue
        points = []
        k = k0
        while not used[k]:
            used[k] = True
            x0, y0, x1, y1 = edge_list[k]
            points.append((x0, y0))
            choices = outgoing[(x1, y1)]
            if len(choices) == 1:
                k = choices[0]
                continue
            free = [c for c in choices if not used[c]]
            if not free:
                break
            # A corner touch (two edges leave this vertex): take the right turn.
            right = (x1 - (y1 - y0), y1 + (x1 - x0))
            k = next((c for c in free if tuple(edge_list[c][2:]) == right), free[0])
        ring = _merge_straight(np.asarray(points, np.float64))
        area = _signed_area(ring)
        rings.append((area, ring))
    # Positive signed area (in y-down coordinates with this orientation) = outer outline.
    rings.sort(key=lambda item: (item[0] <= 0, -abs(item[0])))
    return [r for _, r in rings]


def _merge_straight(points: np.ndarray) -> np.ndarray:
    """Drops vertices in the middle of a straight run."""
    prev = np.roll(points, 1, axis=0)
    nxt = np.roll(points, -1, axis=0)
    cross = (points[:, 0] - prev[:, 0]) * (nxt[:, 1] - points[:, 1]) \
        - (points[:, 1] - prev[:, 1]) * (nxt[:, 0] - points[:, 0])
    keep = cross != 0
    return points[keep] if keep.sum() >= 3 else points


def _signed_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def is_outer(ring: np.ndarray) -> bool:
    """True for an outer outline of :func:`trace_rings`, False for a hole."""
    return _signed_area(ring) > 0


def join_rings(rings: Sequence[np.ndarray]) -> np.ndarray:
    """One polygon equivalent to several rings under the even-odd rule.

    Each further ring is reached from the first ring's first vertex by a
    bridge walked there and back (its two crossings of any row cancel, so it
    covers no pixel), the way Ultralytics' converters join a multi-part
    object into one segmentation line.
    """
    rings = [np.asarray(r, np.float64).reshape(-1, 2) for r in rings]
    anchor = rings[0][:1]
    parts = [rings[0], anchor]
    for ring in rings[1:]:
        parts += [ring, ring[:1], anchor]
    return np.concatenate(parts)[:-1]  # the closing edge returns to the anchor


def disk(center_xy: Tuple[float, float], radius: float, size_hw: Tuple[int, int]
         ) -> np.ndarray:
    """[H, W] bool: pixels whose centre is within ``radius`` of ``center_xy`` (edges)."""
    h, w = size_hw
    ys, xs = np.ogrid[0:h, 0:w]
    return (xs + 0.5 - center_xy[0]) ** 2 + (ys + 0.5 - center_xy[1]) ** 2 <= radius ** 2
