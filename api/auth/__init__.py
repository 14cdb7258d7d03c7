"""Authentication: OAuth2 password flow with signed, expiring tokens."""
