"""Build hook: replay's hot modules compiled by mypyc where a C compiler is at hand.

Everything about the package is in pyproject.toml; this file only adds the
optional native build. The modules below are plain, typed Python (mypy
--strict clean); mypyc (the mypy project's compiler, pinned in
[build-system]) turns each into a C extension that the interpreter imports in
place of the .py, with the same behaviour: the tests run against whichever
was built, and tests/e2e/test_native.py holds the two to the same output.

Where compiling is not possible (no C compiler, as on python:3.11-slim) or
not wanted (SPREADWATCH_PURE=1 while installing), the install is pure Python
and only slower: the build prints why and goes on. A failed native build
leaves no extension behind, so the package never mixes compiled and source
modules of one build.

Nothing is written into the source tree. A wheel (``pip install .``) carries
the extensions beside the modules, as usual, and ``service/_native.json``: the
SHA-256 of each compiled module's source. An editable install (``pip install
-e .``) keeps the extensions and that manifest under ``build/native/`` and
installs ``_spreadwatch_native.py`` with a .pth file that runs it at start-up:
an import hook that loads each compiled module from there ahead of its .py.
``service.native`` reads the manifest to say whether the running code is
compiled, and whether a source was edited after the build (an editable
install then runs the stale extension until ``pip install -e .`` is run
again; the test suite refuses to run on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
MANIFEST = "service/_native.json"  # in a wheel
OUT_OF_TREE = HERE / "build" / "native"  # an editable install's extensions and manifest
HOOK = "_spreadwatch_native"  # the editable install's import hook (module and .pth)
# the hot path of replay and of the live monitor's screens: the evaluation, the exit
# rules it asks, the state machine and its state and decision types, and replay's
# close lines; and reading the positions file (a replay's start-up: 1,000 records cost
# ~4% fewer instructions so); left out: the rules' registry and books (read once), the
# pydantic models, and everything else that does I/O.
# (A dataclass's __init__ that dataclasses writes stays interpreted even here, ~15,700
# instructions to build a Close: the hot types write theirs out, init=False, rules.model.)
NATIVE = [
    "rules/bsm.py",
    "rules/clock.py",
    "rules/evaluate.py",
    "rules/exits/base.py",
    "rules/exits/delta_stop.py",
    "rules/exits/loss_stop.py",
    "rules/exits/profit_target.py",
    "rules/exits/time_stop.py",
    "rules/machine.py",
    "rules/model.py",
    "rules/plan.py",
    "rules/pnl.py",
    "rules/pricing.py",
    "rules/screen.py",
    "rules/state.py",
    "rules/watch.py",
    "rules/watchlist.py",
    "service/fields.py",
    "service/inputs.py",
    "service/presentation.py",
    "service/replay/rows.py",
    "service/replay/stamps.py",
    "service/replay/engine.py",
]

# The import hook an editable install runs at start-up (setup.py fills in BUILT)
HOOK_SOURCE = '''"""spreadwatch's compiled modules, from outside the source tree (by setup.py)."""

import sys
from importlib.util import spec_from_file_location
from os.path import isfile

BUILT = {built!r}


class NativeFinder:
    """Finds each module of the native build as its extension, ahead of its .py source."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        origin = BUILT.get(fullname)
        if origin is None or not isfile(origin):  # (build/ removed: the sources run)
            return None
        return spec_from_file_location(fullname, origin)


def install():
    if NativeFinder not in sys.meta_path:
        sys.meta_path.insert(0, NativeFinder)
'''


def _say(text: str) -> None:
    print(f"spreadwatch build: {text}", file=sys.stderr)


def _ext_modules() -> list[Any]:
    if os.environ.get("SPREADWATCH_PURE"):
        _say("SPREADWATCH_PURE is set: pure Python")
        return []
    try:
        from mypyc.build import mypycify  # noqa: PLC0415  (a build requirement)

        # the modules' third-party imports (pydantic, ...) are not in the build
        # environment: mypyc treats them as Any; no config file (its plugins neither)
        return list(
            mypycify(
                ["--config-file=", "--ignore-missing-imports", *NATIVE],
                opt_level="3",
                group_name="spreadwatch_native",
            )
        )
    except (Exception, SystemExit) as exc:  # (mypy reports its errors by SystemExit)
        _say(f"mypyc could not compile the native modules ({exc!r}): pure Python")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python when the C build fails, and that builds
    "in place" (editable installs) under build/native/, not beside the sources."""

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as exc:  # (no compiler, or one that fails: any of several errors)
            _say(f"no C build ({exc}): pure Python")
            for path in self.get_outputs():
                Path(path).unlink(missing_ok=True)
            self.extensions = []
            return
        manifest = {
            path.removesuffix(".py").replace("/", "."): hashlib.sha256(
                (HERE / path).read_bytes()
            ).hexdigest()
            for path in NATIVE
        }
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        targets = [Path(self.build_lib) / MANIFEST]
        if self.inplace or self.editable_mode:
            targets.append(OUT_OF_TREE / "_native.json")
            self._install_hook()
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _say(f"compiled {len(NATIVE)} modules with mypyc")

    def copy_extensions_to_source(self) -> None:
        """Where setuptools would copy the extensions beside their sources (editable
        installs, --inplace), copy them under build/native/; remove any an older build
        left in the tree (they would shadow the sources)."""
        build_py = self.get_finalized_command("build_py")
        (HERE / MANIFEST).unlink(missing_ok=True)
        for ext in self.extensions:
            in_tree, built = self._get_inplace_equivalent(build_py, ext)
            Path(in_tree).unlink(missing_ok=True)
            target = OUT_OF_TREE / self.get_ext_filename(self.get_ext_fullname(ext.name))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(built, target)

    def _install_hook(self) -> None:
        """Put the import hook in the editable wheel (what setuptools installs from it:
        the ``install`` command's install_lib), if this is one."""
        wheel = getattr(self.distribution.get_command_obj("install"), "install_lib", None)
        if not (self.editable_mode and wheel):
            return
        built = {
            self.get_ext_fullname(ext.name): str(
                OUT_OF_TREE / self.get_ext_filename(self.get_ext_fullname(ext.name))
            )
            for ext in self.extensions
        }
        Path(wheel, f"{HOOK}.py").write_text(HOOK_SOURCE.format(built=built))
        Path(wheel, f"{HOOK}.pth").write_text(f"import {HOOK}; {HOOK}.install()\n")

    def get_outputs(self) -> list[str]:
        outputs = list(super().get_outputs())
        if self.extensions:
            outputs.append(str(Path(self.build_lib) / MANIFEST))
        return outputs


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
