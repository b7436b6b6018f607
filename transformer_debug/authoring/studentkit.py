"""What a student installs: the course library alone, as a wheel, with pinned requirements.

Students fetch notebooks from the exchange (release/), never this repository: it holds the
solutions (source/) and the hidden tests. The notebooks import `transformer_debug` (tasks,
probes, plots, the visible tests' helpers), so the kit is that package without its authoring
tools, built into a wheel, and a requirements.txt pinning the same torch and Jupyter as the
course (nbval outputs and the grader's numbers are made with them).
"""
from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["build_kit", "STUDENT_PACKAGES"]

# What a student's JupyterLab needs: the notebooks' imports, and nbgrader for fetch and submit.
STUDENT_PACKAGES = ["torch", "jupyterlab", "notebook", "nbgrader", "matplotlib", "scikit-learn", "tqdm",
                    "ipywidgets"]

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "transformer-debug"
version = "{version}"
description = "Transformer Debug's course library for students: tasks, probes, plots, test helpers"
requires-python = ">=3.11"

[tool.setuptools]
packages = ["transformer_debug"]
"""

README = """Transformer Debug: what to install
==================================

In a fresh virtual environment (Python 3.11 or newer), from this folder:

    python3 -m venv ~/transformer-debug && . ~/transformer-debug/bin/activate
    pip install -r requirements.txt

This installs torch {torch} (CPU is enough), JupyterLab, nbgrader (fetch and submit), and the
course library `transformer_debug` (no solutions in it). Then fetch an assignment and start:

    nbgrader fetch_assignment 01_attention --course transformer-debug
    jupyter lab
"""


def _pins(root: Path) -> dict[str, str]:
    pins = {}
    for line in (root / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m[1].lower()] = m[2]
    return pins


def build_kit(root: Path, out: Path) -> Path:
    """out/: transformer_debug-<version>-py3-none-any.whl, requirements.txt, README.txt."""
    root, out = Path(root), Path(out)
    out = out if out.is_absolute() else root / out
    version = importlib.metadata.version("transformer-debug") if _installed() else "0.1.0"
    with tempfile.TemporaryDirectory(prefix="student-kit-") as tmp:
        # Only the library: authoring/ (the grader's and the author's tools) stays behind.
        shutil.copytree(Path(__file__).resolve().parents[1], Path(tmp) / "transformer_debug",
                        ignore=shutil.ignore_patterns("authoring", "__pycache__", "*.pyc"))
        (Path(tmp) / "pyproject.toml").write_text(PYPROJECT.format(version=version))
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                               "--wheel-dir", str(Path(tmp) / "dist"), tmp], capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError("building the student wheel failed: " + " | ".join(proc.stderr.splitlines()[-5:]))
        [wheel] = (Path(tmp) / "dist").glob("*.whl")
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        shutil.copy(wheel, out / wheel.name)
    pins = _pins(root)
    lines = ["# Transformer Debug, for students: pip install -r requirements.txt (from this folder)"]
    for name in STUDENT_PACKAGES:
        version_pin = pins.get(name) or _installed_version(name)
        if not version_pin:
            raise RuntimeError(f"no pinned version of {name} in requirements.txt or this environment")
        lines.append(f"{name}=={version_pin}")
    lines.append(f"./{wheel.name}")
    (out / "requirements.txt").write_text("\n".join(lines) + "\n")
    (out / "README.txt").write_text(README.format(torch=pins.get("torch", "")))
    return out


def _installed() -> bool:
    try:
        importlib.metadata.version("transformer-debug")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
