"""Amounts of money that know their currency. Pure code.

Partner costs come in the distributor's or Microsoft's billing currency, PSA prices in the MSP's
own; adding a euro to a dollar gives a number that means nothing. ``Money`` refuses it
(``CurrencyMismatch``), and ``Totals`` keeps one sum per currency, so a report can show several
currencies side by side but never one mixed figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def currency_code(value: str) -> str:
    """An ISO 4217 code, upper case (``usd`` -> ``USD``); anything else is refused."""
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValueError(f"{value!r} is not an ISO 4217 currency code (like USD, EUR, GBP)")
    return code


@dataclass(frozen=True, order=True)
class Money:
    """An exact amount in one currency."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise ValueError(f"an amount must be a finite Decimal, got {self.amount!r}")
        object.__setattr__(self, "currency", currency_code(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self} and {other}: different currencies")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def times(self, factor: int | Decimal) -> Money:
        return Money(self.amount * factor, self.currency)

    def rounded(self) -> Money:
        """To the cent, half away from zero (the convention of every amount SeatSync shows)."""
        return Money(self.amount.quantize(CENT, rounding=ROUND_HALF_UP), self.currency)

    def __str__(self) -> str:
        return f"{self.amount.quantize(CENT, rounding=ROUND_HALF_UP):,} {self.currency}"


def total(amounts: Iterable[Money]) -> Money | None:
    """The sum of amounts of one currency (None when there are none); ``CurrencyMismatch`` when
    they are not all of one currency."""
    result: Money | None = None
    for amount in amounts:
        result = amount if result is None else result + amount
    return result


class Totals(Mapping[str, Money]):
    """Sums kept apart by currency: ``totals["USD"]``. Adding never converts."""

    def __init__(self, amounts: Iterable[Money] = ()) -> None:
        self._sums: dict[str, Money] = {}
        for amount in amounts:
            self.add(amount)

    def add(self, amount: Money) -> None:
        current = self._sums.get(amount.currency)
        self._sums[amount.currency] = amount if current is None else current + amount

    def __getitem__(self, currency: str) -> Money:
        return self._sums[currency_code(currency)]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._sums))

    def __len__(self) -> int:
        return len(self._sums)

    def single(self) -> Money | None:
        """The one total when every amount had the same currency; None when there were none;
        ``CurrencyMismatch`` when there are several currencies (a mixed sum is not a number)."""
        if not self._sums:
            return None
        if len(self._sums) > 1:
            raise CurrencyMismatch(f"amounts in {', '.join(sorted(self._sums))} cannot be added up")
        return next(iter(self._sums.values()))

    def __str__(self) -> str:
        return ", ".join(str(self._sums[c]) for c in sorted(self._sums)) or "0"
