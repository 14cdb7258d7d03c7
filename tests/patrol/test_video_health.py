"""Video health on generated stills: each problem found on its own frames, and no false alarm on good
ones — a dark but real classroom above all (low mean, but edges and texture)."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from devices.frames import FrameRenderer
from patrol.video_health import FrozenRun, HealthThresholds, NotAStill, measure, problems

T = HealthThresholds()
ROOMS = [("R4213030001-01", "teacher"), ("R4213030001-01", "students"), ("R4213030002-01", "blackboard"),
         ("B4213030003-004", "panorama"), ("R4213030005-02", "students"), ("B4213030009-001", "panorama")]


@pytest.fixture(scope="module")
def frames() -> FrameRenderer:
    return FrameRenderer()


def judged(jpeg: bytes) -> list[str]:
    return problems(measure(jpeg), T)


@pytest.mark.parametrize("device, camera", ROOMS)
def test_good_stills_raise_nothing_however_bright_or_dark(frames, device, camera):
    for light in (1.0, 1.3, 0.33, 0.2):  # a lit room, a sunny one, a dark one, a very dark one
        still = frames.still(device, camera, 7, light=light)
        assert judged(still) == [], (light, measure(still))
    dark = measure(frames.still(device, camera, 7, light=0.2))
    assert dark.mean < min(45, measure(frames.still(device, camera, 7)).mean / 3)  # dark indeed, by the measure


@pytest.mark.parametrize("device, camera", ROOMS)
def test_each_fault_is_named(frames, device, camera):
    assert judged(frames.still(device, camera, 3, {"black_picture"})) == ["black"]
    assert judged(frames.still(device, camera, 3, {"covered_camera"})) == ["covered"]
    assert judged(frames.still(device, camera, 3, {"blurred_picture"})) == ["blurred"]


def _jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def test_uniform_frames_dark_or_lit_and_clipped_exposures(frames):
    assert judged(frames.still("R4213030001-01", "students", 3, light=3.0)) == ["overexposed"]  # facing a window
    assert judged(_jpeg(Image.new("RGB", (320, 180), (2, 2, 2)))) == ["black"]
    assert judged(_jpeg(Image.new("RGB", (320, 180), (40, 34, 30)))) == ["covered"]  # dark and uniform: a hand
    assert judged(_jpeg(Image.new("RGB", (320, 180), (70, 120, 200)))) == ["covered"]  # one colour: tape, a cloth
    crushed = Image.new("L", (320, 180), 0)
    crushed.paste(Image.linear_gradient("L").resize((320, 60)), (0, 120))  # two thirds black, a lit strip
    assert judged(_jpeg(crushed.convert("RGB"))) == ["underexposed"]  # detail lost in the dark, not a dark room


def test_a_frozen_camera_is_frozen_after_the_third_alike_still_and_only_then(frames):
    start = datetime(2025, 11, 26, 2, 0, tzinfo=UTC)
    stills = [measure(frames.still("R4213030001-01", "students", i, {"frozen_picture"})) for i in range(4)]
    run = FrozenRun(stills[0].grid, start)
    seen = []
    for i, m in enumerate(stills[1:], start=1):
        run = run.then(m.grid, start + timedelta(minutes=i), T)
        seen.append(run.frozen(T))
    assert seen == [False, True, True]
    moving = [measure(frames.still("R4213030001-01", "students", i)) for i in range(4)]
    run = FrozenRun(moving[0].grid, start)
    for i, m in enumerate(moving[1:], start=1):
        run = run.then(m.grid, start + timedelta(minutes=i), T)
        assert not run.frozen(T) and run.alike == 1  # people move: every still differs
    again = FrozenRun(stills[0].grid, start, alike=2).then(stills[1].grid, start + timedelta(minutes=30), T)
    assert again.alike == 1  # alike, but after a break: a new lesson, a new run


def test_what_is_not_a_still_is_refused_with_the_reason(frames):
    png = io.BytesIO()
    Image.new("RGB", (32, 18)).save(png, "PNG")
    with pytest.raises(NotAStill, match="not a JPEG image but PNG"):
        measure(png.getvalue())
    with pytest.raises(NotAStill, match="not a JPEG image"):
        measure(b"\xff\xd8 not really")
    with pytest.raises(NotAStill, match="broken JPEG"):
        measure(frames.still("R4213030001-01", "teacher", 1)[:3000])  # cut short
    with pytest.raises(NotAStill, match="1921x1080 pixels exceeds 1920x1080"):
        measure(_jpeg(Image.new("RGB", (1921, 1080)), quality=10))
    assert measure(_jpeg(Image.new("RGB", (1920, 1080)), quality=10)).width == 1920  # at the bound: taken
