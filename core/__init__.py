"""Shared core of the cockpit platform: settings, database access, the device contract."""
