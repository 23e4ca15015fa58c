"""docs/architecture.md stays true: its paths exist, it describes every package, and the arrows hold."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
CORE_LAYERS = ("engine/core", "engine/training", "engine/batch", "engine/store", "engine/evaluation")
MODALITY_PACKAGES = ("engine.tabular", "engine.images", "engine.timeseries", "engine.text", "engine.audio", "engine.privacy")
INTERFACES = ("engine/cli.py", "jobs", "serve_apps")
# What a modality branch looks like in an interface: a front door named, or a modality compared by name.
BRANCH = re.compile(
    r"(Image|Tabular|TimeSeries|Text|Audio|DP)Synthesizer|is_image|IMAGE_MODELS|TABULAR_MODELS"
    r"|[!=]= *[\"'](image|table|timeseries|text|audio)[\"']"
)


def _python_files(*roots: str) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        path = REPO / root
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def _imported_modules(path: Path) -> set[str]:
    """Every module an import statement names, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_path_the_document_names_exists():
    paths = set(re.findall(r"`((?:engine|jobs|serve_apps|tests|docs)/[\w/.<>-]*)", DOC.read_text()))
    assert paths, "the document names no path"
    missing = sorted(p for p in paths if "<" not in p and not (REPO / p.rstrip("/")).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_engine_package_is_described():
    text = DOC.read_text()
    packages = sorted(
        p.parent.relative_to(REPO).as_posix() for p in (REPO / "engine").rglob("__init__.py") if p.parent != REPO / "engine"
    )
    top = {"/".join(p.split("/")[:2]) for p in packages}
    undescribed = sorted(p for p in top if f"`{p}`" not in text)
    assert not undescribed, f"packages missing from docs/architecture.md: {undescribed}"


@pytest.mark.parametrize("layer", CORE_LAYERS)
def test_the_core_layers_import_no_modality(layer):
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in _imported_modules(path) if m.startswith(MODALITY_PACKAGES))
        for path in _python_files(layer)
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_nothing_in_the_engine_imports_jobs_or_serve_apps_but_the_serve_command():
    offenders = {
        str(path.relative_to(REPO))
        for path in _python_files("engine")
        if any(m.split(".")[0] in ("jobs", "serve_apps") for m in _imported_modules(path))
    }
    assert offenders <= {"engine/cli.py"}


def test_the_interfaces_hold_no_modality_branch():
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _python_files(*INTERFACES)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if BRANCH.search(line)
    ]
    assert not found, "modality branches in the interfaces:\n" + "\n".join(found)


def test_one_class_per_public_name():
    """``engine.X`` is the class every other module means by ``X`` (no two classes share a public name)."""
    from importlib import import_module

    import engine

    public = {name for name in engine.__all__ if name[0].isupper()}
    clashes = []
    for path in _python_files("engine"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name in public:
                module = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
                if getattr(import_module(module), node.name) is not getattr(engine, node.name):
                    clashes.append(f"{module}.{node.name} is another class than engine.{node.name}")
    assert not clashes, clashes
