"""Checks the write paths share: names, money, email, text, days, and a clash with an
existing row (ignoring case) answered as a clear error rather than a database one."""

from __future__ import annotations

import re
from datetime import date, datetime
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


# --- the one rule for text, money and days that come in (API, forms, CSV) ----------------

#: what is not text: C0 controls but tab, newline and carriage return; DEL; halves of a
#: surrogate pair (no encoding can store one alone); U+FFFD, which is what undecodable
#: bytes became on the way in
NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")
NOT_TEXT_MESSAGE = ("Contains characters that are not text (control characters or bytes "
                    "that are not UTF-8); retype it.")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be kept as text, or None when it can."""
    return NOT_TEXT_MESSAGE if NOT_TEXT.search(value) else None


def clean_text(raw: Any, field: str) -> str:
    """``raw`` when it is text we can keep (None is ""); else InvalidInput on ``field``.

    JSON numbers, lists and objects are refused rather than turned into Python's idea of
    text ("inf", "['a']")."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InvalidInput("Send text.", {field: "Send text (a JSON string)."})
    if problem := text_problem(raw):
        raise InvalidInput(problem, {field: problem})
    return raw


#: an amount as people write it: digits, US thousands groups (1,250) or none, at most two
#: decimals, an optional leading "$". Anything else ("1,2,3", "12.345", "١٢٣") is refused
#: rather than guessed at.
_AMOUNT = re.compile(r"\$?\s*((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)",
                     re.ASCII)


def parse_money(raw: Any, field: str, *, maximum: Decimal = MAX_MONEY) -> Decimal | None:
    """An amount from a form, JSON or CSV, exactly as written: None when empty; 0 or more,
    at most two decimals, at most ``maximum``, else InvalidInput on ``field``."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    limit = f"{maximum:,.2f}"
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise InvalidInput("Send the amount as a number.",
                           {field: "Enter an amount such as 1500.00."})
    if isinstance(raw, float):
        raw = repr(raw)  # the shortest text that is this float: 0.1, not 0.1000000000000000055
    text = str(raw).strip()
    found = _AMOUNT.fullmatch(text)
    if found is None:
        if text.startswith("-"):
            message = "Enter 0 or more."
        else:
            message = ("Enter an amount such as 1500.00 (digits, a decimal point, "
                       "commas only between thousands).")
        raise InvalidInput("The amount is not valid.", {field: message})
    try:
        amount = Decimal(found.group(1).replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise InvalidInput("The amount is not valid.", {field: "Enter an amount."}) from None
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput("Use at most two decimals.", {field: "Use at most two decimals."})
    if amount > maximum:
        raise InvalidInput("That amount is too large.",
                           {field: f"Enter a smaller amount: at most {limit}."})
    return amount.quantize(Decimal("0.01"))


#: the days the portal keeps: nothing of ours happened before 2000, and nothing is planned
#: more than a few years ahead (year 1 or 9999 is a typo or a probe, never a fact)
EARLIEST_DAY = date(2000, 1, 1)
YEARS_AHEAD = 5
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def latest_day(today: date) -> date:
    """The last day a date may name, seen from ``today``."""
    return today.replace(year=today.year + YEARS_AHEAD, day=min(today.day, 28))


def parse_day(raw: Any, field: str, *, today: date, earliest: date = EARLIEST_DAY,
              latest: date | None = None, too_early: str = "", too_late: str = ""
              ) -> date | None:
    """A day written as ISO ``YYYY-MM-DD`` and nothing else, from ``earliest`` to ``latest``
    (default: ``YEARS_AHEAD`` years after ``today``); None when empty."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, datetime):
        raw = raw.date()
    if isinstance(raw, date):
        day = raw
    else:
        text = raw.strip() if isinstance(raw, str) else None
        day = None
        if text is not None and _DAY.fullmatch(text):
            try:
                day = date.fromisoformat(text)
            except ValueError:
                day = None
        if day is None:
            raise InvalidInput("The date is not valid.",
                               {field: "Enter a date as YYYY-MM-DD, e.g. 2026-03-31."})
    latest = latest or latest_day(today)
    if day < earliest:
        raise InvalidInput("The date is too early.",
                           {field: too_early or f"Enter a date from {earliest.isoformat()} on."})
    if day > latest:
        raise InvalidInput("The date is too far ahead.",
                           {field: too_late or f"Enter a date up to {latest.isoformat()}."})
    return day
