"""Video health from camera stills: plain image statistics (numpy and Pillow), no models.

A still is decoded small (JPEG's own reduced-size decoding, then a box filter to `ANALYSIS`
pixels) and measured at two scales. The *coarse* grid (`GRID`, each cell the mean of a block of
pixels) has no sensor noise left in it, so its spread says whether there is a picture at all;
the *fine* scale (median-filtered against noise) says whether edges are sharp. Edge measures are
taken after scaling the frame to a mean of 128, so a dark room and a bright one are judged alike.
A still has at most one problem of its own, the first of:

- **black**: mean luma under `black_max_mean` and the grid's standard deviation under
  `black_max_std` — no light and nothing in it (a lost signal, a camera switched off);
- **overexposed** / **underexposed**: at least `clipped_share` of the pixels clipped white
  (≥ 250) or black (≤ 5): detail lost, not merely a bright or a dark room (and what detail is
  missing is the exposure's fault, so such a still is not also called covered or blurred);
- **covered**: no edges on the coarse grid (its Laplacian's standard deviation under
  `covered_max_detail`): the lens is against a hand, a cloth or tape, lit or dark, one colour or
  shaded;
- **blurred**: edges on the coarse grid but none at the fine scale (the Laplacian's standard
  deviation under `blur_max_sharpness`): out of focus, a smeared or fogged lens;
- **frozen** (across stills, `FrozenRun`): `frozen_stills` stills in a row, each within
  `frozen_max_gap_s` of the one before, whose grids differ by less than `frozen_max_diff` grey
  levels on average (a live camera's own noise moves them more than that even in an empty room);
  judged only for a still without a problem of its own (a black or covered picture repeats by
  nature: that is its problem).

A dark classroom (lights off on a grey morning) is not a fault: its mean is low, but its grid
still varies and, scaled to a mean of 128, has the edges of desks, people and windows.
docs/patrol.md gives each threshold and its reason; tests/patrol/test_video_health.py tries them.
"""

import io
import warnings
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, Field

ANALYSIS = (160, 90)  # pixels the measures are taken at (16:9; other shapes are squeezed to it)
BLOCK = 5  # ANALYSIS pixels per grid cell, each way: a 32 x 18 grid
GRID = (ANALYSIS[0] // BLOCK, ANALYSIS[1] // BLOCK)
MAX_WIDTH, MAX_HEIGHT = 1920, 1080  # the largest still accepted (read from the header, before decoding)
PROBLEMS = ("black", "covered", "blurred", "overexposed", "underexposed", "frozen")


class HealthThresholds(BaseModel):
    """Where each measure turns into a problem (docs/patrol.md gives each default's reason)."""

    black_max_mean: float = Field(24.0, ge=0, le=255)
    black_max_std: float = Field(3.0, ge=0, le=128)
    covered_max_detail: float = Field(25.0, ge=0)
    blur_max_sharpness: float = Field(14.0, ge=0)
    clipped_share: float = Field(0.5, gt=0, le=1)
    frozen_max_diff: float = Field(0.25, ge=0, le=255)
    frozen_stills: int = Field(3, ge=2, le=100)
    frozen_max_gap_s: float = Field(300.0, gt=0)


class NotAStill(ValueError):
    """The bytes are not a JPEG still the platform takes; the message says why."""


@dataclass(frozen=True)
class Measures:
    """What one still shows, before any threshold."""

    width: int
    height: int
    mean: float  # luma, 0-255
    std: float  # of the grid's cells (noise averaged out)
    detail: float  # std of the grid's Laplacian, the frame scaled to a mean of 128 (coarse edges)
    sharpness: float  # std of the fine Laplacian, median-filtered, scaled to a mean of 128 (fine edges)
    clipped_dark: float  # share of pixels <= 5
    clipped_bright: float  # share of pixels >= 250
    grid: bytes = field(repr=False)  # the GRID's grey levels, row by row (frozen pictures are compared on it)

    def as_dict(self) -> dict:
        """The measures as stored beside the still (without the grid)."""
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in self.__dict__.items() if k != "grid"}


def open_still(jpeg: bytes, at_least: tuple[int, int] = ANALYSIS) -> Image.Image:
    """The still as a Pillow image in its reduced decoding (no more decoded than `at_least` pixels need);
    NotAStill for anything but a JPEG within MAX_WIDTH x MAX_HEIGHT."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(jpeg))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise NotAStill(f"not a JPEG image ({type(exc).__name__})") from None
    if image.format != "JPEG":
        raise NotAStill(f"not a JPEG image but {image.format}")
    width, height = image.size
    if not (0 < width <= MAX_WIDTH and 0 < height <= MAX_HEIGHT):
        raise NotAStill(f"{width}x{height} pixels exceeds {MAX_WIDTH}x{MAX_HEIGHT}")
    try:
        image.draft("RGB", at_least)  # JPEG decodes at 1/2, 1/4 or 1/8 scale: far less work
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise NotAStill(f"a broken JPEG image ({exc})") from None
    image.info["size"] = (width, height)
    return image


# The exchanges of a sorting network whose middle output is the median of nine (a 3x3 window): numpy's
# minimum and maximum over whole shifted frames, ten times quicker than Pillow's median filter.
_MEDIAN_OF_9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8), (4, 7),
                (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def median3(a: np.ndarray) -> np.ndarray:
    """The 3x3 median of every pixel that has a whole window (the frame less its border)."""
    h, w = a.shape
    p = [a[i:h - 2 + i, j:w - 2 + j] for i in range(3) for j in range(3)]
    for x, y in _MEDIAN_OF_9:
        p[x], p[y] = np.minimum(p[x], p[y]), np.maximum(p[x], p[y])
    return p[4]


def _laplacian_std(a: np.ndarray) -> float:
    return float((a[1:-1, 1:-1] * 4 - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]).std())


def measure(jpeg: bytes) -> Measures:
    """The measures of one JPEG still; NotAStill when it is not one."""
    return measure_image(open_still(jpeg))


def measure_image(image: Image.Image) -> Measures:
    """The measures of a still opened by `open_still`."""
    width, height = image.info["size"]
    # Pillow's L is ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B), one channel to shrink instead of three
    luma = np.asarray(image.convert("L").resize(ANALYSIS, Image.Resampling.BOX), dtype=np.float32)
    cells = luma.reshape(GRID[1], BLOCK, GRID[0], BLOCK).mean(axis=(1, 3))
    mean = float(luma.mean())
    gain = 128.0 / max(mean, 1.0)
    fine = median3(luma.clip(0, 255).astype(np.uint8)).astype(np.float32) * gain
    return Measures(width, height, mean, float(cells.std()), _laplacian_std(cells * gain), _laplacian_std(fine),
                    float((luma <= 5).mean()), float((luma >= 250).mean()),
                    cells.round().clip(0, 255).astype(np.uint8).tobytes())


def problems(m: Measures, t: HealthThresholds) -> list[str]:
    """What is wrong with one still by its own measures (frozen is judged across stills, FrozenRun)."""
    if m.mean < t.black_max_mean and m.std < t.black_max_std:
        return ["black"]
    if m.clipped_bright >= t.clipped_share:
        return ["overexposed"]  # the detail lost is the exposure's, not the lens's
    if m.clipped_dark >= t.clipped_share:
        return ["underexposed"]
    if m.detail < t.covered_max_detail:
        return ["covered"]
    if m.sharpness < t.blur_max_sharpness:
        return ["blurred"]
    return []


def grid_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two grids, in grey levels."""
    return float(np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8)).mean())


@dataclass(frozen=True)
class FrozenRun:
    """A camera's run of alike stills: the last one's grid and time, and how many stills are in the run."""

    grid: bytes
    taken_at: datetime
    alike: int = 1  # stills in the run, the last one included

    def then(self, grid: bytes, taken_at: datetime, t: HealthThresholds) -> "FrozenRun":
        """The run after a later still: one longer when alike and soon enough, else a new run of one."""
        soon = 0 < (taken_at - self.taken_at).total_seconds() <= t.frozen_max_gap_s
        alike = soon and len(grid) == len(self.grid) and grid_difference(grid, self.grid) < t.frozen_max_diff
        return FrozenRun(grid, taken_at, self.alike + 1 if alike else 1)

    def frozen(self, t: HealthThresholds) -> bool:
        """True once `frozen_stills` stills in a row are alike."""
        return self.alike >= t.frozen_stills
