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

Beside the extensions the build writes ``service/_native.json``: the
SHA-256 of each compiled module's source. ``service.native`` reads it to say
whether the running code is compiled, and whether a source was edited after
the build (an editable install then runs the stale extension until
``pip install -e .`` is run again; the test suite refuses to run on it).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
MANIFEST = "service/_native.json"
# the hot path of replay and of the live monitor's screens; rules.machine is left
# out (mypyc cannot compile its exception classes), so is anything doing I/O
NATIVE = [
    "rules/clock.py",
    "rules/model.py",
    "rules/plan.py",
    "rules/pricing.py",
    "rules/watch.py",
    "rules/watchlist.py",
    "service/replay.py",
]


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
    """build_ext that falls back to pure Python when the C build fails."""

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
            targets.append(HERE / MANIFEST)
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        _say(f"compiled {len(NATIVE)} modules with mypyc")

    def get_outputs(self) -> list[str]:
        outputs = list(super().get_outputs())
        if self.extensions:
            outputs.append(str(Path(self.build_lib) / MANIFEST))
        return outputs


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
