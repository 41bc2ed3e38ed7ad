"""BookPolicy: the spec's defaults, INCOME_POP, and a bad book refused, whether code
builds it or a file's table (service.inputs.book_of, which converts the TOML's types)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from rules.books import INCOME_POP, PRIMARY, BookPolicy
from service.errors import InputError
from service.inputs import book_of

D = Decimal


def test_defaults_are_specs_primary_book() -> None:
    """PRIMARY: 50/75/90% targets, 40/40/20% of the original, 3+ contracts scale, mid mark,
    21 DTE time stop at half the initial DTE, 1.5x loss stop, 0.30 delta stop, 120 s stale."""
    book = BookPolicy()
    assert book.targets == (D("0.50"), D("0.75"), D("0.90"))
    assert book.fractions == (D("0.4"), D("0.4"), D("0.2"))
    assert book.scale_basis == "original"
    assert book.scale_min_contracts == 3
    assert book.mark == "mid"
    assert book.time_stop_dte == 21
    assert book.time_stop_fraction == D("0.5")
    assert book.loss_stop_multiple == D("1.5")
    assert book.delta_stop == D("0.30")
    assert book.stale_after == 120
    assert book.stale_after_delta.total_seconds() == 120
    assert not book.allow_delayed


def test_primary_is_the_default_book() -> None:
    """rules.books.PRIMARY is BookPolicy() with no overrides."""
    assert BookPolicy() == PRIMARY


def test_income_pop_targets_and_time_stop() -> None:
    """INCOME_POP: targets 35/60/80%, time stop 14 DTE, the rest as PRIMARY."""
    assert INCOME_POP.targets == (D("0.35"), D("0.60"), D("0.80"))
    assert INCOME_POP.time_stop_dte == 14
    assert INCOME_POP.fractions == PRIMARY.fractions
    assert INCOME_POP.loss_stop_multiple == PRIMARY.loss_stop_multiple
    assert INCOME_POP.delta_stop == PRIMARY.delta_stop


def test_a_book_is_frozen() -> None:
    """A policy cannot be changed after validation."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRIMARY.delta_stop = D("0.5")  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"fractions": (D("0.4"), D("0.4"), D("0.3"))}, id="fractions-sum-1.1"),
        pytest.param({"fractions": (D("0.4"), D("0.4"), D("0.1"))}, id="fractions-sum-0.9"),
        pytest.param({"targets": (D("0.50"), D("0.50"), D("0.90"))}, id="targets-repeat"),
        pytest.param({"targets": (D("0.75"), D("0.50"), D("0.90"))}, id="targets-decrease"),
        pytest.param({"targets": (D("0.50"), D("0.75"), D("1.10"))}, id="target-above-1"),
        pytest.param({"targets": (D("0"), D("0.75"), D("0.90"))}, id="target-zero"),
        pytest.param({"targets": (D("-0.1"), D("0.75"), D("0.90"))}, id="target-negative"),
        pytest.param({"targets": ()}, id="no-targets"),
        pytest.param({"delta_stop": D("0")}, id="delta-zero"),
        pytest.param({"delta_stop": D("1")}, id="delta-one"),
        pytest.param({"delta_stop": D("-0.3")}, id="delta-negative"),
        pytest.param({"stop_loss": D("2")}, id="unknown-key"),
        pytest.param({"targets": (D("0.50"), D("0.75"))}, id="two-targets-three-fractions"),
        pytest.param(
            {"fractions": (D("0.5"), D("0.5"))},
            id="three-targets-two-fractions",
        ),
        pytest.param({"scale_min_contracts": 2}, id="scale-min-below-tranches"),
        pytest.param({"loss_stop_multiple": D("1")}, id="loss-multiple-not-above-1"),
        pytest.param({"mark": "last"}, id="unknown-mark"),
        pytest.param({"scale_basis": "equity"}, id="unknown-basis"),
        pytest.param({"stale_after": 0}, id="stale-after-zero"),
    ],
)
def test_an_incoherent_book_is_rejected(overrides: dict[str, Any]) -> None:
    """Each of these books is a configuration error, not a silent default: read from a
    file's table, and built in code (a TypeError for a key that is no field; a word
    outside a Literal is mypy's to refuse in code, and only a file's to check)."""
    if not {"mark", "scale_basis"} & overrides.keys():
        with pytest.raises((ValueError, TypeError)):
            BookPolicy(**overrides)
    with pytest.raises(InputError, match=r"^book 'X': "):
        book_of(overrides, "book 'X'")


def test_unknown_key_error_names_the_key() -> None:
    """A table's key that is no field: the error says which."""
    with pytest.raises(InputError, match="book 'X': stop_loss: Extra inputs are not permitted"):
        book_of({"stop_loss": D("2")}, "book 'X'")


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"fractions": (D("0.4"), D("0.4"), D("0.3"))},
         "fractions: must sum to 1, they sum to 1.1"),
        ({"targets": (D("0.5"), D("0.75"), D("1.2"))},
         "targets.2: Input should be less than or equal to 1"),
        ({"delta_stop": D("1")}, "delta_stop: Input should be less than 1"),
        ({"reprice": {"steps": 0}}, "reprice.steps: Input should be greater than or equal to 1"),
        ({"stop_reprice": {"interval": 0}},
         "stop_reprice.interval: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_a_bad_table_s_error_names_its_field(overrides: dict[str, Any], says: str) -> None:
    """The first problem, on one line, after the field it is in (an item's index too)."""
    with pytest.raises(InputError) as caught:
        book_of(overrides, "book 'X'")
    assert str(caught.value) == f"book 'X': {says}"


def test_a_file_s_types_are_converted_as_toml_gives_them() -> None:
    """TOML gives arrays as lists and floats as Decimal (service.inputs.read_toml): a
    table's values become the policy's types, and the same table is the same book."""
    table = {"targets": [D("0.35"), D("0.60"), D("0.80")], "time_stop_dte": 14}
    assert book_of(table, "book 'X'") == INCOME_POP
    book = book_of({"stale_after": D("60.5"), "stop_reprice": {"interval": 2}}, "book 'X'")
    assert (book.stale_after, type(book.stale_after)) == (60.5, float)
    assert (book.stop_reprice.interval, type(book.stop_reprice.interval)) == (2.0, float)


def test_a_coherent_custom_book_is_accepted() -> None:
    """Two tranches, 60/40, at 40% and 70%, scaling from 2 contracts, is a valid book."""
    book = BookPolicy(
        targets=(D("0.40"), D("0.70")),
        fractions=(D("0.6"), D("0.4")),
        scale_min_contracts=2,
    )
    assert book.targets == (D("0.40"), D("0.70"))


def test_a_target_of_exactly_one_is_allowed() -> None:
    """A last target of 100% (buy back for nothing) is in (0, 1]."""
    book = BookPolicy(targets=(D("0.50"), D("0.75"), D("1")))
    assert book.targets[-1] == 1
