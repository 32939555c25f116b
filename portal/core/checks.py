"""Checks the write paths share: names, money, email, and a clash with an existing row
(ignoring case) answered as a clear error rather than a database one."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.core.errors import InvalidInput

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


#: Numeric(12, 2): the largest amount the money columns hold
MAX_MONEY = Decimal("9999999999.99")


def refuse_taken(session: Session, column: Any, value: str, current: Any, *,
                  message: str, field: str, field_message: str) -> None:
    """Refuse ``value`` when another row already has it in ``column`` (ignoring case)."""
    model = column.class_
    clash = select(model.id).where(func.lower(column) == value.lower())
    if current is not None:
        clash = clash.where(model.id != current.id)
    if session.scalar(clash) is not None:
        raise InvalidInput(message, {field: field_message})


def flush_unique(session: Session, message: str, fields: dict[str, str]) -> None:
    # The checks before this catch the usual duplicate; a savepoint turns the rare race
    # with a concurrent request into the same clear message instead of a 500.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise InvalidInput(message, fields) from None


def clean_name(value: str, label: str, limit: int, field: str = "name") -> str:
    value = " ".join((value or "").split())
    if not value:
        raise InvalidInput(f"{label} is required.", {field: f"Enter the {label.lower()}."})
    if len(value) > limit:
        raise InvalidInput(f"{label} is too long.", {field: f"Use at most {limit} characters."})
    return value


def clean_money(value: Decimal | str | int | None, field: str) -> Decimal:
    try:
        amount = Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        raise InvalidInput("Enter an amount.", {field: "Enter an amount such as 1500.00."}) \
            from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("Amounts cannot be negative.", {field: "Enter 0 or more."})
    if amount > MAX_MONEY:
        raise InvalidInput("That amount is too large.", {field: "Enter a smaller amount."})
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput("Use at most two decimals.", {field: "Use at most two decimals."})
    return amount.quantize(Decimal("0.01"))
