"""Ingest: subscribes to every device channel, validates, and writes batches to the database."""
