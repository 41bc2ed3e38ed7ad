"""Where the files that ship with spreadwatch are: the source tree, or an install.

In the source tree (and an editable install) ``migrations/`` and ``examples/``
sit at the top; a regular install (the container image) carries them inside
the ``service`` package as ``_migrations`` and ``_examples``.
"""

from __future__ import annotations

from pathlib import Path

_SERVICE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The directory ``name`` (``migrations`` or ``examples``) as shipped."""
    installed = _SERVICE / f"_{name}"
    return installed if installed.is_dir() else _SERVICE.parent / name
