"""A realistic, deterministic demo province: Hubei's real divisions with generated schools."""
