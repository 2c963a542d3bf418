"""DESIGN.md's layout rule: top-level folders are kiosq.<folder>, nothing shadows the
standard library, and each floor imports only from the floors below it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("kiosk", "queue", "devices", "content", "provisioning", "base")
# What each folder may import from kiosq (besides itself).
FLOORS = {"base": set(), "devices": {"base"}, "content": {"base"},
          "queue": {"base", "devices", "content"}, "kiosk": {"base", "devices", "content"},
          "provisioning": set(FOLDERS), "bench": set(FOLDERS)}


def test_import_queue_is_the_standard_library_even_from_the_checkout():
    # `python -m pytest` and `python -m ...` put the repository root first on sys.path.
    out = subprocess.run([sys.executable, "-c", "import queue, concurrent.futures; print(queue.__file__)"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).parent != ROOT / "queue" and out.endswith("queue.py")
    assert hasattr(sys.modules.get("queue") or __import__("queue"), "SimpleQueue")


@pytest.mark.parametrize("folder", FOLDERS)
def test_top_level_folders_have_no_init(folder):
    assert not (ROOT / folder / "__init__.py").exists()


def test_folders_are_installed_as_kiosq_subpackages():
    import kiosq.provisioning.cli
    import kiosq.queue.engine

    assert Path(kiosq.queue.engine.__file__).parent == ROOT / "queue"
    assert Path(kiosq.provisioning.cli.__file__).parent == ROOT / "provisioning"


def _kiosq_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "kiosq" and len(parts) > 1:
                found.add(parts[1])
            elif parts[0] in FOLDERS and parts[0] != "queue":
                found.add(f"bare:{parts[0]}")
    return found


@pytest.mark.parametrize("folder", [f for f in (*FOLDERS, "bench") if (ROOT / f).is_dir()])
def test_each_floor_imports_only_from_below(folder):
    for path in (ROOT / folder).rglob("*.py"):
        used = _kiosq_imports(path) - {folder}
        assert not {u for u in used if u.startswith("bare:")}, f"{path}: import kiosq.<folder>, not <folder>"
        assert used <= FLOORS[folder], f"{path} imports {sorted(used - FLOORS[folder])}"


def test_the_server_cli_does_not_load_the_kiosk_or_the_server_until_asked():
    code = ("import sys, kiosq.provisioning.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kivy', 'fastapi', 'uvicorn')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
