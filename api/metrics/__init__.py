"""Metrics: the catalogue of figures, their values per scope and child, rankings and trends."""
