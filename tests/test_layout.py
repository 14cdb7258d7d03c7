"""The house's floors, read from the code: every import of a project package, at module level or
inside a function, points down (docs/architecture.md, "Folders")."""

import ast
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

# What each package may import besides itself. The kernel imports nothing of the project; the
# services only the kernel (ingest and patrol never each other); the API also the rollups' and
# the patrol's own definitions; the cockpit talks to the API over HTTP and imports no server
# code; launch/ops tooling and the benchmarks sit on top.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "ingest": {"core"},
    "patrol": {"core"},
    "rollups": {"core"},
    "devices": {"core"},
    "api": {"core", "rollups", "patrol"},
    "dashboard": {"core"},
    "ops": {"core", "ingest", "patrol", "rollups", "devices", "api", "dashboard"},
    "bench": {"core", "ingest", "patrol", "rollups", "devices", "api", "dashboard", "ops"},
}
# The kernel's modules the cockpit may use: nothing that talks to the database or the broker.
COCKPIT_KERNEL = {"core.credentials", "core.settings", "core.calendar"}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, relative ones resolved to their package."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's own package
                base = path.relative_to(PROJECT_ROOT).parent.parts[: len(path.relative_to(PROJECT_ROOT).parts) - node.level]
                found.append((node.lineno, ".".join([*base, node.module or ""]).rstrip(".")))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def violations(package: str) -> list[str]:
    """Every import in `package` of a project package it may not import."""
    bad = []
    for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
        for line, module in imports(path):
            top = module.split(".")[0]
            if top in ALLOWED and top != package and top not in ALLOWED[package]:
                bad.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {module}")
            if package == "dashboard" and top == "core" and module not in COCKPIT_KERNEL and module != "core":
                bad.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports server code {module}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package):
    assert (PROJECT_ROOT / package).is_dir()
    assert violations(package) == []


def test_every_package_has_a_floor():
    """A new top-level package must be placed in ALLOWED (and in docs/architecture.md)."""
    packages = {p.parent.name for p in PROJECT_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(ALLOWED)


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The checker itself: an upward import, a lazy one and a relative one are all found."""
    fake = tmp_path / "core"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("import os\nfrom api.main import app\n\ndef f():\n    import ingest.service\n")
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "x.py").write_text("from ..patrol import engine\n")
    monkeypatch.setattr(f"{__name__}.PROJECT_ROOT", tmp_path)
    assert violations("core") == ["core/bad.py:2 imports api.main", "core/bad.py:5 imports ingest.service"]
    assert violations("ingest") == ["ingest/x.py:1 imports patrol"]


def test_device_state_has_one_writer():
    """Only core/device_state.py writes the devices' current state (the demo seed aside, which
    lays down a starting state for a province that has never been heard from)."""
    import re

    writes = re.compile(r"(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+device_state\b", re.IGNORECASE)
    writers = {str(path.relative_to(PROJECT_ROOT)) for package in ALLOWED if package not in {"bench"}
               for path in (PROJECT_ROOT / package).rglob("*.py") if writes.search(path.read_text())}
    assert writers == {"core/device_state.py", "ops/seed/history.py"}
