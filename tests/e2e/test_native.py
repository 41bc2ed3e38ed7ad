"""The optional mypyc build (setup.py, service.native): compiled and pure agree, to the byte.

The suite runs against whatever the install built: the compiled modules where a
C compiler was at hand, the .py sources elsewhere. ``SPREADWATCH_PURE=1`` runs
the sources beside a compiled build, so on a machine with a compiler both are
exercised and held to the same output here. CI sets SPREADWATCH_EXPECT_NATIVE
so that a build that silently fell back to pure Python fails it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from service import native
from tests.factories import generate
from tests.support import EXAMPLES, ROOT

TIMING = re.compile(r" in [\d.]+s \([\d,]+ rows/s\)")


def spreadwatch(*args: str | Path, pure: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def loaded_from(pure: bool) -> dict[str, str]:
    """Where each built module is imported from, in a fresh process."""
    code = (
        "import importlib, json\n"
        "from service import native\n"
        "native.use_sources()\n"
        "names = sorted(native.built())\n"
        "print(json.dumps({n: importlib.import_module(n).__file__ for n in names}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


@pytest.mark.parametrize("seed", [5, 6])
def test_compiled_and_pure_replays_are_the_same(tmp_path: Path, seed: int) -> None:
    data = generate(tmp_path, seed, 30_000)
    ticks = data / "ticks.csv"
    rows = ticks.read_text().splitlines()
    # rows the fast paths must not take: another offset, a fraction of another length,
    # a quoted field, a timestamp going back inside its second, a bad one
    first = rows[200].split(",")
    ts = first[0]
    rows[201:201] = [
        ",".join([ts[:19] + ".5" + ts[-6:], *first[1:]]),
        ",".join([ts[:-6] + "+00:00", *first[1:]]),
        ",".join([f'"{ts}"', *first[1:]]),
        ",".join([ts[:19] + ".000" + ts[-6:], *first[1:]]),
        ",".join([ts[:17] + "7x" + ts[19:], *first[1:]]),
    ]
    ticks.write_text("\n".join(rows) + "\n")
    args = ("replay", "--positions", data / "positions.toml", "--ticks", ticks)
    compiled, pure = spreadwatch(*args, pure=False), spreadwatch(*args, pure=True)
    assert compiled.stdout == pure.stdout
    assert TIMING.sub("", compiled.stderr) == TIMING.sub("", pure.stderr)
    assert compiled.stdout.count("\n") > 20
    assert "bad rows skipped" in compiled.stderr


def test_local_greeks_replay_the_same_both_ways(tmp_path: Path) -> None:
    """No broker deltas: no screens, every row evaluated, vollib per short leg."""
    data = generate(tmp_path, 7, 4_000, no_delta=True)
    args = ("replay", "--positions", data / "positions.toml", "--ticks", data / "ticks.csv")
    compiled, pure = spreadwatch(*args, pure=False), spreadwatch(*args, pure=True)
    assert compiled.stdout == pure.stdout
    assert TIMING.sub("", compiled.stderr) == TIMING.sub("", pure.stderr)
    assert compiled.stdout.count("\n") > 5


def test_the_examples_replay_the_same_both_ways() -> None:
    args = ("replay", "--positions", EXAMPLES / "positions.toml")
    args += ("--ticks", EXAMPLES / "ticks.csv")
    compiled, pure = spreadwatch(*args, pure=False), spreadwatch(*args, pure=True)
    assert (compiled.stdout, TIMING.sub("", compiled.stderr)) == (
        pure.stdout,
        TIMING.sub("", pure.stderr),
    )


def test_spreadwatch_pure_imports_the_sources() -> None:
    pure = loaded_from(pure=True)
    assert all(path.endswith(".py") for path in pure.values()), pure
    if native.kind() == "compiled":
        compiled = loaded_from(pure=False)
        assert set(compiled) == set(pure) == set(native.built())
        assert all(path.endswith(".so") for path in compiled.values()), compiled


def test_the_build_writes_nothing_into_the_source_tree() -> None:
    """Extensions and the manifest live under build/ (editable) or in the install, never
    beside the sources; compiled modules are imported from there."""
    in_tree = [
        path
        for package in ("rules", "service", "brokers")
        for path in (ROOT / package).rglob("*")
        if path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    ]
    assert in_tree == [], in_tree
    assert list(ROOT.glob("spreadwatch_native*")) == []
    assert not (ROOT / "service" / "_native.json").exists()
    if native.kind() == "compiled":
        sources = (str(ROOT / "rules"), str(ROOT / "service"))
        compiled = loaded_from(pure=False)
        assert not [path for path in compiled.values() if path.startswith(sources)], compiled


@pytest.mark.skipif(
    not os.environ.get("SPREADWATCH_EXPECT_NATIVE") or bool(os.environ.get(native.PURE_ENV)),
    reason="only where a compiler is promised, and not on the sources",
)
def test_the_install_compiled_the_hot_modules() -> None:
    assert native.kind() == "compiled"
    assert set(native.built()) >= {
        "rules.watch",
        "rules.watchlist",
        "service.replay.engine",
        "service.replay.rows",
        "service.replay.stamps",
    }
    assert native.stale() == []


def test_a_build_older_than_its_source_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "_native.json"
    manifest.write_text(json.dumps({"rules.watch": "0" * 64, "rules.plan": "1" * 64}))
    os.utime(manifest, ns=(0, 0))  # built before the sources were last written
    monkeypatch.setattr(native, "MANIFEST", manifest)
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    monkeypatch.setattr(native, "_extension", lambda name: Path(f"/x/{name}.so"))
    assert native.stale() == ["rules.plan", "rules.watch"]
    assert native.kind() == "compiled"
    # a source no newer than the build is the one built (read by time, as Python's
    # bytecode cache is: not hashed); one newer, as it was built (a touch), is not stale
    os.utime(manifest)
    assert native.stale() == []
    plan = ROOT / "rules" / "plan.py"
    digest = hashlib.sha256(plan.read_bytes()).hexdigest()
    manifest.write_text(json.dumps({"rules.watch": "0" * 64, "rules.plan": digest}))
    os.utime(manifest, ns=(0, 0))
    assert native.stale() == ["rules.watch"]
    monkeypatch.setattr(native, "_extension", lambda name: None)
    assert native.stale() == []  # (nothing compiled: the sources run)
    assert native.kind() == "pure"
    monkeypatch.setattr(native, "_extension", lambda name: Path(f"/x/{name}.so"))
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.kind() == "pure"  # (the sources run, whatever was built)


def test_no_manifest_is_a_pure_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "MANIFEST", tmp_path / "missing.json")
    assert (native.built(), native.kind(), native.stale()) == ({}, "pure", [])
