"""Connected components of a land-cover map, labelled window by window and merged across the windows' edges.

The objects the random events work on are the 4-connected regions of one class. ``scipy.ndimage.label`` on the
whole raster would hold an int32 image of it (6.4 GB for a 40,000 px square map) and its temporaries; here each
window is labelled on its own, its ids go to a per-pixel store (a file for large maps), and the pairs of ids that
touch across each window edge (same class on both sides) are joined with a union-find (``scipy.sparse.csgraph``'s
connected components of the pair graph). The result is exactly the whole-raster labelling: the components are
numbered as ``ndimage.label`` numbers them, class by class in the order given, each class's components in the raster
order of their first pixel, so the events drawn from them are the same on any window size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..io import Scratch, windows

CROSS = ndimage.generate_binary_structure(2, 1)
WINDOW = 1024  # px a side of the labelling windows: an int32 window is 4 MB


@dataclass
class Components:
    """The components, in order: class ``code[k]``, ``size[k]`` pixels, bounding box ``box[k]`` (r0, r1, c0, c1)."""

    code: np.ndarray  # uint8 [K]
    size: np.ndarray  # int64 [K]
    box: np.ndarray  # int64 [K, 4], stops exclusive
    ids: object  # int32 [H, W] store (array or ScratchRaster): the window-local id of each pixel, 0 outside every component
    component_of: np.ndarray  # int32 [ids + 1]: window-local id -> component (-1 for 0)

    def __len__(self) -> int:
        return len(self.code)

    def slices(self, k: int) -> tuple[slice, slice]:
        r0, r1, c0, c1 = (int(v) for v in self.box[k])
        return slice(r0, r1), slice(c0, c1)

    def mask(self, k: int, rows: slice, cols: slice) -> np.ndarray:
        """bool: the pixels of component ``k`` in the window ``rows, cols``."""
        return self.component_of[self.ids[rows, cols]] == k


def find_components(labels, region, codes, scratch: Scratch, window: int = WINDOW) -> Components:
    """The 4-connected components of each class in ``codes`` among the pixels where ``region`` (bool store) holds."""
    height, width = labels.shape
    ids = scratch.zeros(np.int32, "components")
    codes = [int(c) for c in codes]
    rank = np.full(256, len(codes), dtype=np.int64)
    for i, c in enumerate(codes):
        rank[c] = min(rank[c], i)
    found_code, found_size, found_first, found_box = [np.zeros(1, np.uint8)], [np.zeros(1, np.int64)], [np.zeros(1, np.int64)], \
        [np.zeros((1, 4), np.int64)]
    pairs_a, pairs_b = [], []
    n = 0  # ids given so far; window-local ids are n+1 .. n+m
    for rows, cols in windows(height, width, window):
        lab, inside = labels[rows, cols], region[rows, cols]
        local, part = np.zeros(lab.shape, dtype=np.int32), np.empty(lab.shape, dtype=np.int32)
        m = 0
        for code in dict.fromkeys(codes):
            count = ndimage.label((lab == code) & inside, structure=CROSS, output=part)
            if count == 0:
                continue
            if m:
                np.add(part, m, out=part, where=part > 0)  # in place: no copies of the window
            local += part  # the classes do not overlap
            found_code.append(np.full(count, code, dtype=np.uint8))
            m += count
        if m:
            sizes = np.zeros(m + 1, np.int64)
            for r in range(0, local.shape[0], 64):  # bincount makes an int64 copy of what it counts: 64 rows at a time
                sizes += np.bincount(local[r : r + 64].ravel(), minlength=m + 1)
            found_size.append(sizes[1:])
            first, box = np.empty(m, np.int64), np.empty((m, 4), np.int64)
            for k, (rs, cs) in enumerate(ndimage.find_objects(local)):
                # ndimage numbers components by their first pixel in raster order: the first row's first pixel
                col = cs.start + int(np.argmax(local[rs.start, cs] == k + 1))
                first[k] = (rows.start + rs.start) * width + cols.start + col
                box[k] = (rows.start + rs.start, rows.start + rs.stop, cols.start + cs.start, cols.start + cs.stop)
            found_first.append(first)
            found_box.append(box)
            here = local
            if n:
                np.add(here, n, out=here, where=here > 0)
            ids[rows, cols] = here
            # Components touching the window above or on the left join theirs where the class is the same on both sides.
            if rows.start > 0:
                above, above_lab = ids[rows.start - 1 : rows.start, cols][0], labels[rows.start - 1 : rows.start, cols][0]
                join = (above > 0) & (here[0] > 0) & (above_lab == lab[0])
                pairs_a.append(above[join]), pairs_b.append(here[0][join])
            if cols.start > 0:
                left, left_lab = ids[rows, cols.start - 1 : cols.start][:, 0], labels[rows, cols.start - 1 : cols.start][:, 0]
                join = (left > 0) & (here[:, 0] > 0) & (left_lab == lab[:, 0])
                pairs_a.append(left[join]), pairs_b.append(here[:, 0][join])
        n += m
        local = part = here = None  # freed before the next window's arrays are made
    code, size = np.concatenate(found_code), np.concatenate(found_size)
    first, box = np.concatenate(found_first), np.concatenate(found_box)
    root = _roots(n, np.concatenate(pairs_a) if pairs_a else np.zeros(0, np.int64),
                  np.concatenate(pairs_b) if pairs_b else np.zeros(0, np.int64))
    # Each merged component's size, first pixel and box from its window-local parts; its id is its smallest part's.
    r = root[1:]
    total = np.zeros(n + 1, np.int64)
    np.add.at(total, r, size[1:])
    start = np.full(n + 1, np.iinfo(np.int64).max)
    np.minimum.at(start, r, first[1:])
    merged = box.copy()
    np.minimum.at(merged[:, 0], r, box[1:, 0]), np.maximum.at(merged[:, 1], r, box[1:, 1])
    np.minimum.at(merged[:, 2], r, box[1:, 2]), np.maximum.at(merged[:, 3], r, box[1:, 3])
    heads = np.flatnonzero(root == np.arange(n + 1))[1:]
    order = heads[np.lexsort((start[heads], rank[code[heads]]))]
    position = np.full(n + 1, -1, np.int64)
    position[order] = np.arange(len(order))
    component_of = position[root].astype(np.int32)
    component_of[0] = -1
    return Components(code[order], total[order], merged[order], ids, component_of)


def _roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """root[i]: the smallest id joined with id i by the pairs (a, b) (the union-find of the edge pairs)."""
    root = np.arange(n + 1, dtype=np.int64)
    if a.size == 0:
        return root
    nodes, inverse = np.unique(np.concatenate([a, b]).astype(np.int64), return_inverse=True)
    graph = coo_matrix((np.ones(a.size, np.int8), (inverse[: a.size], inverse[a.size :])), shape=(nodes.size, nodes.size))
    _, group = connected_components(graph, directed=False)
    smallest = np.full(group.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(smallest, group, nodes)
    root[nodes] = smallest[group]
    return root
