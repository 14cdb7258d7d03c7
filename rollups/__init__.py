"""The rollups service: hourly/daily rollups, the per-school current state and lesson matching."""
