"""Thresholds of the three classrooms (env prefix LESSONS_): configuration, not code."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LessonSettings(BaseSettings):
    """How a timetabled session is judged held, partial, interrupted or missed."""

    model_config = SettingsConfigDict(env_prefix="LESSONS_", extra="ignore")

    held_stream_share: float = Field(0.8, gt=0, le=1, description="main stream ≥ this share of the slot")
    held_min_receivers: int = Field(1, ge=0, description="receiving classrooms that must join a held session")
    missed_after_min: int = Field(10, ge=0, description="no main stream this long after the start: missed")
    join_early_min: int = Field(15, ge=0, description="events this early before the start still count")
    telemetry_cover_s: int = Field(90, ge=1, description="a streaming reading covers the seconds before it")
    gap_tolerance_min: int = Field(2, ge=1, description="stream gaps shorter than this are not interruptions")
    end_tolerance_min: int = Field(5, ge=0, description="a stream ending earlier than this before the end: a drop")
    quota_per_week: int = Field(1, ge=1, description="常态化: held sessions per pair in every timetabled week")
    quota_weeks: int = Field(4, ge=1, le=52, description="weeks over which a pair's quota is judged")
    max_match_days: int = Field(62, ge=1, description="the largest day range one match request may recompute")


@lru_cache
def lesson_settings() -> LessonSettings:
    """The lesson settings, read once from the environment."""
    return LessonSettings()
