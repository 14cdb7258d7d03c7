"""Devices: lists, detail with history, and commands sent down to them."""
