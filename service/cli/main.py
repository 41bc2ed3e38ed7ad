"""The ``spreadwatch`` command line.

Each subcommand wires its parts here and nowhere else. Bad input ends with one
line on stderr and exit code 2; nothing is written to stdout before the input
has been validated.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from service.cli.gateway_flags import add_fake_gateway, faults_of
from service.cli.help import Parser
from service.errors import INTERRUPTED, InputError, SpreadwatchError


def _native_build() -> None:
    """Before any compiled module is imported: SPREADWATCH_PURE's sources, and a word on
    extensions older than their sources (service.native)."""
    from service import native  # noqa: PLC0415

    if not native.use_sources():
        for name in native.stale():
            sys.stderr.write(
                f"spreadwatch: warning: {name} runs a build older than its source: "
                "run `pip install -e .` again, or set SPREADWATCH_PURE=1\n"
            )


def _replay(args: argparse.Namespace) -> int:
    from service.cli.replay import replay  # noqa: PLC0415

    return replay(args)


def _settings(args: argparse.Namespace) -> Any:
    """The settings, and the logs set to their level and their secrets."""
    from service import logs  # noqa: PLC0415
    from service.settings import load_settings  # noqa: PLC0415

    settings = load_settings(args.config, books_file=getattr(args, "books", None))
    logs.configure(level=settings.log_level, secrets=settings.secrets())
    return settings


def _db(args: argparse.Namespace) -> int:
    from service.cli import admin  # noqa: PLC0415

    run = admin.db_upgrade if args.action == "upgrade" else admin.db_current
    run(_settings(args), sys.stdout)
    return 0


def _positions(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.action == "sync":
        from service.cli.sync import positions_sync  # noqa: PLC0415

        positions_sync(settings, args.apply, sys.stdout)
        return 0
    from service.cli import admin  # noqa: PLC0415

    admin.positions_command(args, settings, sys.stdout)
    return 0


def _clock_flags(args: argparse.Namespace) -> tuple[Any, Any]:
    """``--start`` and ``--for``, checked: (start or None, duration or None)."""
    from datetime import datetime, timedelta  # noqa: PLC0415

    start = None
    if args.start is not None:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError as exc:
            raise InputError(f"--start: not an ISO-8601 time: {args.start!r}") from exc
        if start.tzinfo is None:
            raise InputError(f"--start: no UTC offset: {args.start!r}")
    if args.speed is not None and args.speed <= 0:
        raise InputError(f"--speed: must be positive: {args.speed}")
    return start, None if args.minutes is None else timedelta(minutes=args.minutes)


def _fake_gateway(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from service.cli.fake_gateway import run_fake_gateway  # noqa: PLC0415

    start, duration = _clock_flags(args)
    faults = faults_of(args)
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port: {args.port}: not a TCP port")
    return asyncio.run(
        run_fake_gateway(
            _settings(args),
            sys.stdout,
            host=args.host,
            port=args.port,
            positions_file=args.positions,
            account=args.account,
            speed=args.speed,
            start=start,
            duration=duration,
            faults=faults,
            restore=args.restore,
            farm_flap=args.farm_flap,
            script=args.script,
            ledger=args.ledger,
        )
    )


def _run(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415

    from service.cli.run import run_daemon  # noqa: PLC0415

    start, duration = _clock_flags(args)
    return asyncio.run(
        run_daemon(
            _settings(args),
            sys.stdout,
            dry_run=args.dry_run,
            speed=args.speed,
            start=start,
            duration=duration,
        )
    )


def _demo(args: argparse.Namespace) -> int:
    from service.cli.demo import demo  # noqa: PLC0415

    return demo(_settings(args), sys.stdout)


def _config(leaf: Any) -> None:
    leaf.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file (TOML)")


def _report(args: argparse.Namespace) -> int:
    from service.cli.report import report  # noqa: PLC0415

    report(_settings(args), args.since, args.by, sys.stdout)
    return 0


def _status(args: argparse.Namespace) -> int:
    from service.cli.status import status  # noqa: PLC0415

    if args.every <= 0:
        raise InputError(f"--every: must be positive: {args.every}")
    settings = _settings(args)
    return status(settings, sys.stdout, as_json=args.json, watch=args.watch, every=args.every)


def _add_status_command(sub: Any) -> None:
    st = sub.add_parser(
        "status",
        help="each open position's distance to every exit trigger, nearest first",
        description="Each open position's marks, P&L and distance to every exit trigger, "
        "nearest first: from the running daemon (http_host:http_port), or from the database "
        "when none answers (marks blank). See docs/status.md.",
    )
    st.add_argument("--json", action="store_true", help="the API's JSON (docs/status.md)")
    st.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    st.add_argument("--every", type=float, default=2.0, help="seconds between redraws (2)")
    _config(st)
    st.set_defaults(run=_status)


def _add_report_command(sub: Any) -> None:
    rep = sub.add_parser(
        "report", help="realised P&L from the fills, net of commissions, grouped, with a total"
    )
    rep.add_argument("--since", type=date.fromisoformat, help="DATE: fills from that day on (ET)")
    rep.add_argument(
        "--by", choices=("book", "day", "reason"), default="book", help="grouped by (default book)"
    )
    _config(rep)
    rep.set_defaults(run=_report)


def _add_db_commands(sub: Any) -> None:
    db = sub.add_parser("db", help="the database's schema (Alembic)")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="migrate the schema to this version's head")
    db_sub.add_parser("current", help="the schema's revision, and whether it is at head")
    db.set_defaults(run=_db)

    for leaf in db_sub.choices.values():
        _config(leaf)


def _add_positions_commands(sub: Any) -> None:
    pos = sub.add_parser("positions", help="the positions spreadwatch watches")
    pos_sub = pos.add_subparsers(dest="action", required=True)
    imp = pos_sub.add_parser("import", help="add every position of a positions file, or none")
    imp.add_argument("file", type=Path, help="POSITIONS.toml (the replay format)")
    imp.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in books)")
    add = pos_sub.add_parser("add", help="add one spread")
    add.add_argument("--id", required=True, help="the position's id, unique (e.g. SPY-P-10)")
    add.add_argument("--book", default="PRIMARY", help="its book (default PRIMARY)")
    add.add_argument("--underlying", required=True, help="the underlying's symbol, e.g. SPY")
    add.add_argument("--strategy", required=True, help="put_credit, call_credit or iron_condor")
    add.add_argument("--contracts", required=True, help="spreads opened")
    add.add_argument("--credit", required=True, help="entry credit per spread, e.g. 1.05")
    add.add_argument(
        "--opened-at",
        required=True,
        help="a date (2026-12-04: midnight in New York) or a time with its UTC offset "
        "(2026-12-04T10:00:00-05:00)",
    )
    add.add_argument("--multiplier", help="shares per contract (default 100)")
    add.add_argument("--trading-class", help="the options' class where there are several "
                     "(SPX: SPX monthly, SPXW weekly; default: the only one)")  # fmt: skip
    add.add_argument(
        "--leg",
        action="append",
        required=True,
        help="RIGHT:STRIKE:EXPIRY:SIDE, e.g. P:450:2027-04-16:short (once per leg; the "
        "expiry as YYYY-MM-DD or YYYYMMDD)",
    )
    add.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in books)")
    lst = pos_sub.add_parser("list", help="open positions as a table")
    lst.add_argument("--all", action="store_true", help="closed ones too")
    show = pos_sub.add_parser("show", help="one position: legs, orders, fills, audit trail")
    show.add_argument("id", help="the position's id")
    close = pos_sub.add_parser(
        "close", help="ask the daemon to close all that remains of a position (now, or at start)"
    )
    close.add_argument("id", help="the position's id")
    close.add_argument("--reason", default="manual", help="recorded in the audit trail")
    void = pos_sub.add_parser(
        "void", help="stop watching a position without trading (closed outside, a mistake)"
    )
    void.add_argument("id", help="the position's id")
    void.add_argument("--reason", required=True, help="why: recorded in the audit trail")
    rebook = pos_sub.add_parser("set-book", help="move a position to another book")
    rebook.add_argument("id", help="the position's id")
    rebook.add_argument("book", help="the book it moves to")
    rebook.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in books)")
    resume = pos_sub.add_parser(
        "resume", help="a human has looked: trade a position that needed attention again"
    )
    resume.add_argument("id", help="the position's id")
    sync = pos_sub.add_parser(
        "sync", help="the credit spreads the broker's account holds: found, and imported"
    )
    sync.add_argument("--apply", action="store_true", help="import the new ones (all or none)")
    sync.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in books)")
    pos.set_defaults(run=_positions)
    for leaf in pos_sub.choices.values():
        _config(leaf)


def _add_run_commands(sub: Any) -> None:
    rn = sub.add_parser(
        "run",
        help="the daemon: watch the open positions and close them by their exit rules",
        description="Watch every open position and close it by its exit rules, on the "
        "simulated market (the default) or on Interactive Brokers: choose IB with "
        'SPREADWATCH_BROKER=ib or broker = "ib" in the --config file (IB Gateway or TWS at '
        "ib.host:ib.port, 127.0.0.1:4002 by default; see docs/ib.md). SIGTERM stops it "
        "(exit 0), Ctrl-C too (exit 130).",
    )
    rn.add_argument("--dry-run", action="store_true", help="evaluate and record, send nothing")
    rn.add_argument(
        "--speed", type=float, help="simulated clock speed (default 1; the simulated market only)"
    )
    rn.add_argument(
        "--start",
        help="simulated clock start, ISO-8601 with offset (default now; the simulated market "
        "only: on IB the clock is IB's time, set a trial's on `fake-gateway --start`)",
    )
    rn.add_argument(
        "--for", dest="minutes", type=float, help="stop after this many minutes of clock time"
    )
    _config(rn)
    rn.set_defaults(run=_run)
    dm = sub.add_parser(
        "demo",
        help="a scripted session on the simulated market: every exit type in seconds",
    )
    _config(dm)
    dm.set_defaults(run=_demo)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("spreadwatch")
    except PackageNotFoundError:  # (run from a source tree that is not installed)
        return "(not installed)"


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata
    costs every other command ~25 ms of start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, help="show program's version number and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        sys.stdout.write(f"spreadwatch {_version()}\n")
        parser.exit()


def parser(*, replay_only: bool = False) -> argparse.ArgumentParser:
    """The command line's parser; ``replay_only``: with the replay subcommand alone (the
    others are ~7 ms of a start-up: argparse makes a help formatter for each option)."""
    top = Parser(
        prog="spreadwatch",
        description="Watch options credit spreads and close them by exit rules.",
    )
    top.add_argument("--config", type=Path, help="settings file (TOML)")
    top.add_argument("--version", action=_Version)
    sub = top.add_subparsers(dest="command", required=True)
    rp = sub.add_parser(
        "replay",
        help="run the exit rules over recorded leg quotes",
        description="Replay recorded leg quotes through the exit rules, filling every close "
        "at the mark. Exits go to stdout as JSON Lines; the human log and a summary to stderr.",
    )
    rp.add_argument("--positions", type=Path, required=True, help="POSITIONS.toml")
    rp.add_argument("--ticks", type=Path, required=True, help="TICKS.csv")
    rp.add_argument("--books", type=Path, help="BOOKS.toml (default: built-in PRIMARY, INCOME_POP)")
    rp.add_argument("--rate", type=float, help="risk-free rate for local Greeks (default 0.04)")
    rp.add_argument("--dividend", type=float, help="dividend yield for local Greeks (default 0)")
    _config(rp)
    rp.set_defaults(run=_replay)
    if replay_only:
        return top
    _add_db_commands(sub)
    _add_positions_commands(sub)
    _add_run_commands(sub)
    add_fake_gateway(sub, _fake_gateway, _config)
    _add_report_command(sub)
    _add_status_command(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C at any time: what was open is closed on the way out
        sys.stderr.write("spreadwatch: interrupted\n")
        return INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    # a replay's start-up is part of its time: its own parser (its help and errors the same)
    args = parser(replay_only=words[:1] == ["replay"]).parse_args(words)
    # Replay is one pass over files: nothing it builds is garbage before the end, so the
    # cyclic collector's walks (of the modules it imports, the validated positions, the
    # loop's memos) are waste. What it built is kept to the exit: frozen, so that no
    # collection walks it (the interpreter's at exit included).
    quiet = args.run is _replay and gc.isenabled()
    if quiet:
        gc.disable()
    try:
        return _command(args)
    finally:
        if quiet:
            gc.freeze()
            gc.enable()


def _command(args: argparse.Namespace) -> int:
    _native_build()
    if args.run is not _replay:  # (replay logs nothing: it keeps its start-up short)
        from service import logs  # noqa: PLC0415

        logs.configure()
    try:
        code: int = args.run(args)
    except SpreadwatchError as exc:
        sys.stderr.write(f"spreadwatch: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:  # e.g. `spreadwatch replay ... | head`
        return 0
    return code


if __name__ == "__main__":
    raise SystemExit(main())
