"""Test suite set-up: fixtures live in tests/fixtures and are loaded as plugins."""

pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.factories",
    "tests.fixtures.app",
    "tests.fixtures.devices",
    "tests.fixtures.browser",
]
