"""Scopes: the four administrative levels and communities, and who may see what."""
