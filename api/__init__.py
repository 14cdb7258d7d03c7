"""The metrics API: the one place where metrics are defined and access is enforced."""
