"""positions sync's pure part: the account's holdings grouped into credit spreads, what
cannot be placed and why, and the spreads as positions to import."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rules.model import Right, Side, Strategy
from service.ports import Holding, LegFill, LegKey, StoredLeg
from service.sync.build import plan, spread_id
from service.sync.group import Why, group

EXPIRY = date(2027, 4, 16)
NOW = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)


def h(
    right: str,
    strike: str,
    quantity: int,
    price: str,
    *,
    underlying: str = "SPY",
    expiry: date = EXPIRY,
    con_id: int | None = None,
    multiplier: int = 100,
    trading_class: str = "",
) -> Holding:
    """A holding of ``quantity`` contracts opened at ``price`` a share (avgCost: x100)."""
    leg = LegKey(underlying, expiry, Right(right), Decimal(strike))
    cid = con_id if con_id is not None else abs(hash((leg, trading_class))) % 10**9 + 1
    return Holding(leg, cid, quantity, Decimal(price) * multiplier, multiplier, trading_class)


def fill(holding: Holding, quantity: int, price: str, minutes: int, n: int = 1) -> LegFill:
    return LegFill(
        f"E{holding.con_id}.{n}",
        holding.con_id,
        holding.leg,
        quantity,
        Decimal(price),
        NOW - timedelta(days=1, minutes=-minutes),
    )


def reasons(holdings: list[Holding], **kw: object) -> list[tuple[Why, int]]:
    got = group(holdings, **kw)  # type: ignore[arg-type]
    return [(u.why, len(u.holdings)) for u in got.unplaced]


# Found ----------------------------------------------------------------------------


def test_a_put_credit_vertical_is_found_with_its_credit_from_the_average_costs() -> None:
    (spread,) = group([h("P", "450", -2, "3.20"), h("P", "445", 2, "2.05")]).spreads
    assert spread.strategy is Strategy.PUT_CREDIT
    assert (spread.quantity, spread.credit, spread.opened_at) == (2, Decimal("1.15"), None)
    assert spread_id(spread) == "SPY-20270416-P450-445"


def test_a_call_credit_vertical_pairs_with_the_higher_strike() -> None:
    (spread,) = group([h("C", "500", 1, "0.40"), h("C", "495", -1, "1.10")]).spreads
    assert spread.strategy is Strategy.CALL_CREDIT
    assert spread.credit == Decimal("0.70")
    assert spread_id(spread) == "SPY-20270416-C495-500"


def test_a_put_and_a_call_vertical_make_an_iron_condor_whose_credit_is_their_sum() -> None:
    held = [
        h("P", "450", -3, "2.00"),
        h("P", "445", 3, "1.25"),
        h("C", "490", -3, "1.50"),
        h("C", "495", 3, "0.60"),
    ]
    (spread,) = group(held).spreads
    assert spread.strategy is Strategy.IRON_CONDOR
    assert spread.credit == Decimal("0.75") + Decimal("0.90")
    assert spread_id(spread) == "SPY-20270416-IC450-445-490-495"


def test_verticals_of_different_quantities_stay_verticals() -> None:
    held = [h("P", "450", -3, "2"), h("P", "445", 3, "1"), h("C", "490", -2, "2"),
            h("C", "495", 2, "1")]  # fmt: skip
    assert [s.strategy for s in group(held).spreads] == [
        Strategy.CALL_CREDIT,
        Strategy.PUT_CREDIT,
    ]


def test_each_short_pairs_with_the_nearest_protective_long_of_its_quantity() -> None:
    held = [
        h("P", "450", -1, "5"),
        h("P", "440", -1, "3"),
        h("P", "445", 1, "4"),
        h("P", "430", 1, "1"),
    ]
    assert sorted(spread_id(s) for s in group(held).spreads) == [
        "SPY-20270416-P440-430",
        "SPY-20270416-P450-445",
    ]


def test_the_credit_is_exact_to_the_cent_from_ib_average_costs() -> None:
    short = Holding(LegKey("SPY", EXPIRY, Right.PUT, Decimal(450)), 1, -1, Decimal("157.5"), 100)
    long = Holding(LegKey("SPY", EXPIRY, Right.PUT, Decimal(445)), 2, 1, Decimal("50.0"), 100)
    (spread,) = group([short, long]).spreads
    assert str(spread.credit) == "1.075000"


def test_opening_executions_that_cover_both_legs_give_the_credit_and_the_time() -> None:
    short, long = h("P", "450", -3, "9"), h("P", "445", 3, "1")
    fills = [
        fill(short, -1, "3.00", 0),
        fill(short, -2, "3.30", 5, 2),
        fill(long, 3, "2.00", 1),
        fill(short, 1, "2.50", 2, 3),  # a buy of the short leg: not an opening execution
    ]
    (spread,) = group([short, long], fills).spreads
    assert spread.credit == Decimal("3.20") - Decimal("2.00")
    assert spread.opened_at == fills[1].time


def test_executions_that_do_not_cover_the_quantity_leave_the_average_costs() -> None:
    short, long = h("P", "450", -3, "3.20"), h("P", "445", 3, "2.00")
    (spread,) = group([short, long], [fill(short, -1, "9", 0), fill(long, 3, "1", 0)]).spreads
    assert (spread.credit, spread.opened_at) == (Decimal("1.20"), None)


def test_the_latest_opening_executions_are_the_open_lots() -> None:
    short, long = h("P", "450", -1, "9"), h("P", "445", 1, "9")
    fills = [fill(short, -1, "5.00", 0), fill(short, -1, "3.00", 9, 2), fill(long, 1, "1", 0)]
    (spread,) = group([short, long], fills).spreads
    assert spread.credit == Decimal("2.00")


# Cannot be placed ----------------------------------------------------------------------


def test_a_naked_short_and_a_long_alone() -> None:
    assert reasons([h("P", "450", -1, "3"), h("C", "500", 1, "1")]) == [
        (Why.LONG_ALONE, 1),
        (Why.NAKED_SHORT, 1),
    ]


def test_a_long_on_the_wrong_side_is_a_debit_spread() -> None:
    got = group([h("P", "450", 1, "3.00"), h("P", "445", -1, "2.00")])
    (lost,) = got.unplaced
    assert (lost.why, got.spreads) == (Why.DEBIT, ())
    assert lost.reason == "debit spread: long P450 above short P445, the long costs 1 a share more"


def test_a_protective_long_that_cost_more_than_the_short_is_a_debit_spread() -> None:
    assert reasons([h("P", "450", -1, "1.00"), h("P", "445", 1, "1.50")]) == [(Why.DEBIT, 2)]


def test_quantities_that_do_not_pair_are_a_ratio() -> None:
    got = group([h("P", "450", -2, "3"), h("P", "445", 1, "1")])
    (lost,) = got.unplaced
    assert (lost.why, lost.detail) == (Why.RATIO, "-2 P450, +1 P445")


def test_a_leg_stored_by_conid_or_by_leg_is_not_paired_again() -> None:
    short, long = h("P", "450", -1, "3"), h("P", "445", 1, "1")
    by_id = StoredLeg("HAND", short.leg, Side.SHORT, short.con_id)
    got = group([short, long], stored=[by_id])
    assert [(u.why, u.holdings) for u in got.unplaced] == [
        (Why.LONG_ALONE, (long,)),
        (Why.STORED, (short,)),
    ]
    assert got.unplaced[1].reason == "already in a stored position: HAND"
    other_contract = StoredLeg("HAND", short.leg, Side.SHORT, 999)  # same leg, another conId
    assert group([short, long], stored=[other_contract]).unplaced == ()
    by_leg = [StoredLeg("HAND", x.leg, Side.SHORT, None) for x in (short, long)]
    (spread,) = group([short, long], stored=by_leg).spreads
    assert spread.stored_as == "HAND"


def test_a_stored_spread_does_not_take_a_free_long_from_another() -> None:
    """The stored legs are set apart first: the free long 448 stays alone even though it
    is nearer the stored short than the stored long."""
    short, long, free = h("P", "450", -1, "3"), h("P", "445", 1, "1"), h("P", "448", 1, "2")
    stored = [StoredLeg("HAND", x.leg, Side.SHORT, None) for x in (short, long)]
    got = group([short, long, free], stored=stored)
    assert [s.stored_as for s in got.spreads] == ["HAND"]
    assert [(u.why, u.holdings) for u in got.unplaced] == [(Why.LONG_ALONE, (free,))]


# As positions ------------------------------------------------------------------------------


def test_found_spreads_become_valid_positions_with_the_book_and_a_free_id() -> None:
    qqq = [h("P", "395.5", -1, "2", underlying="QQQ"), h("P", "390", 1, "1", underlying="QQQ")]
    held = [h("P", "450", -2, "3.20"), h("P", "445", 2, "2.05"), *qqq]
    made = plan(
        group(held),
        book="PRIMARY",
        books={"QQQ": "INCOME_POP"},
        taken={"SPY-20270416-P450-445"},
        now=NOW,
    )
    assert [(p.id, p.book, p.entry_credit, p.opened_at) for p in made.new] == [
        ("QQQ-20270416-P395.5-390", "INCOME_POP", Decimal("1.000000"), NOW),
        ("SPY-20270416-P450-445-2", "PRIMARY", Decimal("1.150000"), NOW),
    ]
    assert str(made.new[1].legs[0].strike) == "450"


def test_options_of_two_trading_classes_never_pair_and_a_position_keeps_its_class() -> None:
    """SPX's third-Friday options come as SPX (monthly) and SPXW (weekly): a short SPX
    and a long SPXW are two contracts, not a spread. An SPXW vertical is one, and its
    position names SPXW, so the broker can tell which contracts it holds."""

    def spx(strike: str, quantity: int, price: str, trading_class: str) -> Holding:
        expiry = date(2027, 3, 19)
        return h("P", strike, quantity, price, underlying="SPX", expiry=expiry,
                 trading_class=trading_class)  # fmt: skip

    held = [spx("4800", -1, "30", "SPX"), spx("4750", 1, "20", "SPXW"),
            spx("4700", -1, "15", "SPXW"), spx("4650", 1, "10", "SPXW")]  # fmt: skip
    found = group(held)
    assert reasons(held) == [(Why.NAKED_SHORT, 1), (Why.LONG_ALONE, 1)]
    [spread] = found.spreads
    [position] = plan(found, book="PRIMARY", books={}, taken=set(), now=NOW).new
    assert [str(x.leg.strike) for x in spread.holdings] == ["4700", "4650"]
    assert position.trading_class == "SPXW"


def test_a_spread_that_is_not_a_valid_position_is_unplaced() -> None:
    """A credit as wide as the spread is no credit spread (rules.model.check_position)."""
    made = plan(
        group([h("P", "450", -1, "6"), h("P", "445", 1, "1")]),
        book="PRIMARY",
        books={},
        taken=(),
        now=NOW,
    )
    assert made.found == ()
    assert [u.why for u in made.unplaced] == [Why.INVALID]


# Properties ----------------------------------------------------------------------------------

STRIKES = [Decimal(s) for s in range(440, 461, 5)]


@st.composite
def accounts(draw: st.DrawFn) -> list[Holding]:
    legs = draw(
        st.lists(
            st.tuples(st.sampled_from(["P", "C"]), st.sampled_from(STRIKES),
                      st.sampled_from(["SPY", "QQQ"])),
            unique=True, max_size=10,
        )
    )  # fmt: skip
    return [
        h(r, str(k), draw(st.sampled_from([-3, -2, -1, 1, 2, 3])),
          str(draw(st.integers(0, 500)) / Decimal(100)), underlying=u)
        for r, k, u in legs
    ]  # fmt: skip


@given(accounts(), st.data())
def test_every_holding_is_placed_once_and_found_spreads_are_credit_spreads(
    held: list[Holding], data: st.DataObject
) -> None:
    stored = [
        StoredLeg("S", x.leg, Side.SHORT, None) for x in data.draw(st.lists(st.sampled_from(held)))
    ] if held else []  # fmt: skip
    got = group(held, stored=stored)
    placed = [x for s in got.spreads for x in s.holdings] + [
        x for u in got.unplaced for x in u.holdings
    ]
    assert sorted(map(id, placed)) == sorted(map(id, held))
    for spread in got.spreads:
        assert spread.credit > 0
        for v in spread.verticals:
            assert v.short.quantity == -v.long.quantity < 0
            assert v.short.leg.right is v.long.leg.right
            assert (v.long.leg.strike < v.short.leg.strike) == (v.right is Right.PUT)
        assert len({s.quantity for s in spread.verticals}) == 1
    assert group(list(reversed(held)), stored=stored) == got  # the order given does not matter
