"""The benchmarks' database: the server ``DATABASE_URL`` names, or a throwaway embedded
PostgreSQL without it; either migrated to head before the benchmark runs."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from service.store import database


def on_database(run: Callable[[str], None]) -> None:
    """``run`` with the database's URL (asyncpg's form), at head."""
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(database.upgrade(database.async_url(url)))
        run(database.async_url(url))
        return
    with tempfile.TemporaryDirectory() as tmp, database.EmbeddedPostgres(Path(tmp)) as db:
        asyncio.run(database.upgrade(db.url))
        run(db.url)
