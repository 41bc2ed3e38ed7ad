"""``spreadwatch fake-gateway``'s flags: its parser and the faults they ask for (kept apart
from :mod:`service.cli.fake_gateway`, which imports the gateway: the parser is built on
every command, replay's short start-up included)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.errors import InputError

if TYPE_CHECKING:
    from service.bootstrap import Faults


def add_fake_gateway(sub: Any, run: Callable[[Any], int], config: Callable[[Any], None]) -> None:
    """The ``fake-gateway`` command's parser (its flags, the faults' among them)."""
    fg = sub.add_parser(
        "fake-gateway",
        help="a fake IB Gateway (TWS API) on the simulated market: the IB path, no account",
        description="Serve the TWS API on HOST:PORT from the simulated market, with a paper "
        "account holding the legs of the positions file. SIGINT or SIGTERM stops it.",
    )
    fg.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    fg.add_argument("--port", type=int, default=4002, help="port (default 4002, IB Gateway paper)")
    fg.add_argument("--positions", type=Path, help="POSITIONS.toml (default: the examples)")
    fg.add_argument("--account", default="DU1234567", help="the account it manages")
    fg.add_argument("--speed", type=float, default=1.0, help="market clock speed (default 1)")
    fg.add_argument("--start", help="market clock start, ISO-8601 with offset (default now)")
    fg.add_argument("--for", dest="minutes", type=float, help="stop after this many minutes")
    fg.add_argument("--bad-quotes", choices=["-1", "nan"], default="", help="fault: option quotes")
    fg.add_argument("--reject", metavar="REASON", help="fault: reject every order (201)")
    fg.add_argument("--line-limit", type=int, default=100, help="market data lines (default 100)")
    fg.add_argument("--fill-size", type=int, help="fault: fill at most this many spreads a step")
    for flag, fault in (
        ("--delayed-only", "only delayed data"),
        ("--read-only", "a read-only API (321)"),
        ("--inactive-then-submitted", "a new order Inactive for a moment, then Submitted"),
        ("--commission-first", "commission reports before their executions"),
        ("--leg-only-fills", "no BAG execution for a combo fill, its legs' only"),
    ):
        fg.add_argument(flag, action="store_true", help=f"fault: {fault}")
    fg.add_argument("--commission-delay", type=float, metavar="SECONDS",
                    help="fault: commission reports trail by SECONDS")  # fmt: skip
    unsubscribed = "no market data subscription for these underlyings' options (IB's 10089)"
    fg.add_argument("--no-subscription", metavar="SYMBOLS", help=f"fault: {unsubscribed}, "
                    "comma-separated")  # fmt: skip
    flap = "every SECONDS the options' data farm breaks (2103, 2105), then is OK again (2104, 2106)"
    fg.add_argument("--farm-flap", type=float, metavar="SECONDS", help=f"fault: {flap}")
    moves = "move the market by FILE's [[moves]]: an underlying's price set or moved at a time"
    fg.add_argument("--script", type=Path, metavar="FILE", help=moves)
    ledger = "append one JSON line to FILE per order received and per execution sent"
    fg.add_argument("--ledger", type=Path, metavar="FILE", help=ledger)
    restore = "the code the second SIGUSR2 sends after 1100 (default 1102: data kept)"
    fg.add_argument("--restore", type=int, choices=[1101, 1102], default=1102, help=restore)
    config(fg)
    fg.set_defaults(run=run)


def faults_of(args: Any) -> Faults:
    """The fault flags of ``spreadwatch fake-gateway``, checked."""
    from service.bootstrap import Faults  # noqa: PLC0415

    if args.line_limit < 1 or (args.fill_size is not None and args.fill_size < 1):
        raise InputError("--line-limit and --fill-size: must be at least 1")
    unsubscribed = frozenset(s.strip().upper() for s in (args.no_subscription or "").split(","))
    return Faults(args.delayed_only, args.bad_quotes, args.reject, args.line_limit,
                  args.fill_size, unsubscribed=unsubscribed - {""}, read_only=args.read_only,
                  inactive_then_submitted=args.inactive_then_submitted,
                  commission_delay=args.commission_delay, commission_first=args.commission_first,
                  leg_only_fills=args.leg_only_fills)  # fmt: skip
