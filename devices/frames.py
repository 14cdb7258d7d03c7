"""Synthetic camera stills: a classroom seen by one camera, with people who move, and the faults
a camera suffers (black, frozen, blurred, covered).

A still is small (`WIDTH`×`HEIGHT`), rendered with Pillow over a background drawn once per camera
role and look (a handful of looks per role, shared by every device: a province's cameras do not
each keep a picture in memory), then the people of this moment, the room's own light and sensor
noise (a few pre-made noise fields), and encoded as JPEG: a few tens of KiB, as a real camera's
snapshot. Everything is deterministic for a device, a camera and a frame number.
"""

import io
import random
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

WIDTH, HEIGHT = 320, 180
QUALITY = 90
LOOKS = 6  # backgrounds per camera role
NOISE_FIELDS = 4
NOISE_SIGMA = 7.0  # sensor noise, grey levels
BLUR_RADIUS = 4.0  # a camera out of focus

# What each kind of device films: a recording classroom has three cameras, a receiving
# classroom's board one, looking over the room.
CAMERAS = {"recorder": ("teacher", "students", "blackboard"), "board": ("panorama",)}
SKIN = ((233, 196, 160), (220, 180, 140), (200, 160, 120), (240, 205, 175))
HAIR = ((25, 20, 18), (40, 30, 25), (60, 45, 35))
UNIFORMS = ((30, 70, 160), (210, 215, 225), (170, 40, 45), (40, 120, 80), (230, 230, 230))


@dataclass(frozen=True)
class Look:
    """The room's colours for one background."""

    wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    board: tuple[int, int, int]
    desk: tuple[int, int, int]


def _look(rng: random.Random) -> Look:
    wall = tuple(rng.randint(185, 235) for _ in range(3))
    return Look(wall=wall, floor=(rng.randint(120, 170), rng.randint(100, 140), rng.randint(80, 110)),
                board=(rng.randint(20, 50), rng.randint(60, 95), rng.randint(45, 70)),
                desk=(rng.randint(150, 190), rng.randint(110, 140), rng.randint(70, 95)))


def _writing(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], rng: random.Random, lines: int) -> None:
    """Chalk strokes on a board: lines of short marks, as handwriting looks from afar."""
    x0, y0, x1, y1 = box
    for row in range(lines):
        y = y0 + 8 + row * 12
        if y > y1 - 6:
            return
        x = x0 + 6
        while x < x1 - 10 and rng.random() < 0.96:
            w = rng.randint(3, 9)
            draw.line([(x, y + rng.randint(-2, 2)), (x + w, y + rng.randint(-3, 3))], fill=(235, 235, 225), width=1)
            x += w + rng.randint(2, 6)


def _background(role: str, look_index: int) -> Image.Image:
    """The room without people, as one camera sees it."""
    rng = random.Random(f"{role}:{look_index}")
    look = _look(rng)
    image = Image.new("RGB", (WIDTH, HEIGHT), look.wall)
    draw = ImageDraw.Draw(image)
    horizon = {"teacher": 130, "students": 70, "blackboard": 175, "panorama": 80}[role]
    draw.rectangle([0, horizon, WIDTH, HEIGHT], fill=look.floor)
    for x in range(0, WIDTH, 16):  # floor tiles
        draw.line([(x, horizon), (x - 20, HEIGHT)], fill=tuple(c - 18 for c in look.floor))
    if role in ("teacher", "blackboard", "panorama"):
        box = {"teacher": (50, 25, 270, 105), "blackboard": (8, 8, 312, 168), "panorama": (95, 10, 225, 55)}[role]
        draw.rectangle(box, fill=look.board, outline=(120, 90, 60), width=3)
        _writing(draw, box, rng, 12)
    if role in ("students", "panorama"):
        for x in (20, 250):  # windows on the back wall
            draw.rectangle([x, 8, x + 50, horizon - 12], fill=(200, 225, 245), outline=(90, 90, 90), width=2)
            draw.line([(x + 25, 8), (x + 25, horizon - 12)], fill=(90, 90, 90), width=2)
        rows = (95, 120, 150) if role == "students" else (110, 135, 160)
        for y in rows:
            for x in range(10, WIDTH - 30, 52):
                draw.polygon([(x, y), (x + 44, y), (x + 48, y + 12), (x - 4, y + 12)], fill=look.desk,
                             outline=tuple(c - 40 for c in look.desk))
    if role == "teacher":
        draw.rectangle([120, 112, 200, 150], fill=look.desk, outline=(80, 60, 40), width=2)  # the lectern
    draw.rectangle([WIDTH - 40, 5, WIDTH - 8, 20], fill=(40, 40, 40))  # a clock or a speaker
    return image


def _noise_fields(sigma: float) -> list[Image.Image]:
    """Grey sensor noise around 128, as RGB images: added with ImageChops.add(..., offset=-128)."""
    gen = np.random.default_rng(2024)
    fields = []
    for _ in range(NOISE_FIELDS):
        grey = np.clip(gen.normal(128.0, sigma, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
        fields.append(Image.fromarray(grey, "L").convert("RGB"))
    return fields


class FrameRenderer:
    """Renders the stills of simulated cameras; keeps the last one of each camera (a frozen camera
    sends it again)."""

    def __init__(self) -> None:
        self._backgrounds: dict[tuple[str, int], Image.Image] = {}
        self._noise = _noise_fields(NOISE_SIGMA)
        self._faint = _noise_fields(1.0)
        self.last: dict[tuple[str, str], bytes] = {}

    def background(self, role: str, device_id: str) -> Image.Image:
        """The device's room as this camera sees it (one of LOOKS per role)."""
        key = (role, zlib.crc32(device_id.encode()) % LOOKS)
        if key not in self._backgrounds:
            self._backgrounds[key] = _background(*key)
        return self._backgrounds[key]

    def still(self, device_id: str, role: str, frame: int, faults: set[str] = frozenset(),
              light: float = 1.0) -> bytes:
        """The JPEG still of one camera at frame number `frame` (a minute apart, say), with the device's faults:
        `black_picture`, `frozen_picture` (the previous still again), `blurred_picture`, `covered_camera`.
        `light` scales the room's brightness (a dark classroom: 0.3)."""
        key = (device_id, role)
        if "frozen_picture" in faults and key in self.last:
            return self.last[key]
        rng = random.Random(f"{device_id}:{role}:{frame}")
        if "black_picture" in faults:
            image = Image.new("RGB", (WIDTH, HEIGHT), (4, 4, 5))
            light = 1.0
        elif "covered_camera" in faults:
            image = _covered(rng)
            light = 1.0
        else:
            image = self.background(role, device_id).copy()
            _people(ImageDraw.Draw(image), role, device_id, frame, rng)
            if "blurred_picture" in faults:
                image = image.filter(ImageFilter.GaussianBlur(BLUR_RADIUS))
        jpeg = self._finish(image, rng, light, noisy="black_picture" not in faults)
        self.last[key] = jpeg
        return jpeg

    def _finish(self, image: Image.Image, rng: random.Random, light: float, noisy: bool) -> bytes:
        if light != 1.0:
            image = image.point([min(255, round(v * light)) for v in range(256)] * 3)
        noise = (self._noise if noisy else self._faint)[rng.randrange(NOISE_FIELDS)]
        out = io.BytesIO()
        ImageChops.add(image, noise, offset=-128).save(out, "JPEG", quality=QUALITY)
        return out.getvalue()


def _covered(rng: random.Random) -> Image.Image:
    """A lens covered by a hand or a cloth: one colour, lit unevenly, out of focus."""
    colour = rng.choice(((150, 100, 80), (60, 50, 45), (90, 110, 140), (200, 160, 130)))
    image = Image.new("RGB", (WIDTH, HEIGHT), colour)
    draw = ImageDraw.Draw(image)
    for i in range(6):  # a soft fall of light from one side
        shade = tuple(max(0, c - 6 * i) for c in colour)
        draw.rectangle([i * WIDTH // 6, 0, WIDTH, HEIGHT], fill=shade)
    return image.filter(ImageFilter.GaussianBlur(12))


def _person(draw: ImageDraw.ImageDraw, x: float, y: float, scale: float, rng: random.Random,
            seat: random.Random) -> None:
    """A seated or standing figure: shoulders in a uniform, a face, hair."""
    head = 7 * scale
    skin, hair, uniform = seat.choice(SKIN), seat.choice(HAIR), seat.choice(UNIFORMS)
    draw.ellipse([x - 1.8 * head, y + head * 0.8, x + 1.8 * head, y + head * 4.5], fill=uniform)
    draw.ellipse([x - head, y - head, x + head, y + head], fill=skin)
    draw.chord([x - head, y - head - 1, x + head, y + head * 0.6], 180, 360, fill=hair)
    if rng.random() < 0.15:  # a hand raised
        draw.line([(x + 1.5 * head, y + head), (x + 2 * head, y - 2 * head)], fill=skin, width=max(1, int(head / 2)))


def _people(draw: ImageDraw.ImageDraw, role: str, device_id: str, frame: int, rng: random.Random) -> None:
    """The class at this moment: students who shift in their seats, a teacher who walks about."""
    seats = random.Random(zlib.crc32(device_id.encode()))  # who sits where: the same every frame
    if role in ("students", "panorama"):
        rows = ((88, 0.8), (112, 1.0), (140, 1.25)) if role == "students" else ((100, 0.8), (125, 1.0), (150, 1.2))
        for y, scale in rows:
            for x in range(32, WIDTH - 20, 26):
                if seats.random() < 0.12:
                    continue  # an empty seat
                dx, dy = rng.uniform(-4, 4), rng.uniform(-3, 2)
                _person(draw, x + dx, y - 14 * scale + dy, scale, rng, seats)
    if role in ("teacher", "blackboard", "panorama"):
        walk = (frame * 37 + seats.randrange(WIDTH)) % (2 * WIDTH)  # back and forth across the front
        x = walk if walk < WIDTH else 2 * WIDTH - walk
        scale = {"teacher": 2.4, "blackboard": 3.2, "panorama": 1.0}[role]
        y = {"teacher": 70, "blackboard": 80, "panorama": 62}[role]
        if role != "blackboard" or rng.random() < 0.6:
            _person(draw, x, y + rng.uniform(-2, 2), scale, rng, seats)
