"""Which of the hot modules run compiled, and whether those builds are current.

setup.py compiles a few typed modules with mypyc where a C compiler is at hand
(see there) and records the SHA-256 of each source in a manifest: beside this
module in a wheel install (``service/_native.json``), under ``build/native/``
of the source tree in an editable one, where the extensions are too (an import
hook installed with the package loads them ahead of the sources). An
extension module is imported in place of its .py, so after an edit to one of
those sources an editable install keeps running the old build until it is
installed again: :func:`stale` names such modules, the CLI warns about them
and the test suite refuses to run on them.

``SPREADWATCH_PURE=1`` in the environment of a command runs the .py sources
even where extensions were built (:func:`use_sources`, called by the CLI
before it imports any of them): the reference the compiled build is held to,
and a way out when a build is in doubt.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent
_OUT_OF_TREE = _HERE.parent / "build" / "native" / "_native.json"  # an editable install's
MANIFEST = _OUT_OF_TREE if _OUT_OF_TREE.is_file() else _HERE / "_native.json"
PURE_ENV = "SPREADWATCH_PURE"


def built() -> dict[str, str]:
    """The modules the last native build compiled, with their sources' SHA-256."""
    try:
        manifest = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in manifest.items()} if isinstance(manifest, dict) else {}


def _source(name: str) -> Path | None:
    """The .py file of module ``name`` (found, not imported)."""
    parent, _, leaf = name.rpartition(".")  # (every built module is in a package)
    spec = importlib.util.find_spec(parent) if parent else None
    for root in spec.submodule_search_locations or () if spec else ():
        path = Path(root) / f"{leaf}.py"
        if path.is_file():
            return path
    return None


def _extension(name: str) -> Path | None:
    """The extension module that ``import name`` would load, if any."""
    spec = importlib.util.find_spec(name)
    origin = spec.origin if spec else None
    if origin and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return Path(origin)
    return None


def kind() -> str:
    """ "compiled" where every module of the native build imports as its extension (not
    under SPREADWATCH_PURE), else "pure"."""
    names = built()
    if not names or os.environ.get(PURE_ENV):
        return "pure"
    return "compiled" if all(_extension(n) for n in names) else "pure"


def stale() -> list[str]:
    """Modules whose extension was built from a source that has changed since. A source
    no newer than the manifest (written after the build) is the one built, as Python
    judges its own bytecode cache by time; only a newer one is hashed (an edit, or a
    touch: a checkout). Every CLI command asks this, so the common case reads no source
    and loads no hash library (OpenSSL's: 11 M instructions of a start-up of ~350 M)."""
    try:
        built_at = MANIFEST.stat().st_mtime_ns
    except OSError:
        return []
    out = []
    for name, digest in sorted(built().items()):
        source = _source(name)
        if _extension(name) is None or source is None:
            continue
        if source.stat().st_mtime_ns > built_at and _digest(source) != digest:
            out.append(name)
    return out


def _digest(source: Path) -> str:
    import hashlib  # noqa: PLC0415  (only for a source newer than the build: stale)

    return hashlib.sha256(source.read_bytes()).hexdigest()


class _Sources:
    """Finds the listed modules as their .py sources, ahead of any extension (a meta path
    finder: ``find_spec`` is all ``sys.meta_path`` asks of one)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = frozenset(names)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        source = _source(fullname)
        return None if source is None else importlib.util.spec_from_file_location(fullname, source)


def use_sources() -> bool:
    """Under SPREADWATCH_PURE, import the built modules from their .py sources from now
    on; True if it did. Call before any of them is imported."""
    names = built()
    if not os.environ.get(PURE_ENV) or not names:
        return False
    if not any(isinstance(f, _Sources) for f in sys.meta_path):
        sys.meta_path.insert(0, _Sources(list(names)))
    return True
