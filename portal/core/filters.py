"""Jinja filters and globals: dates, money, statuses in words."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from flask import Flask, request, url_for
from werkzeug.datastructures import MultiDict

STATUS_LABELS = {
    "captured": "Captured",
    "qualified": "Qualified",
    "nurture": "Nurture",
    "disqualified": "Disqualified",
    "unassigned": "Unassigned",
    "offered": "Offered",
    "accepted": "Accepted",
    "contacted": "Contacted",
    "appointment": "Appointment",
    "quoted": "Quoted",
    "won": "Won",
    "lost": "Lost",
    "no_interest": "No interest",
}


#: stored codes shown as words (free text passes through unchanged)
CODE_LABELS = {
    "phone": "Phone", "email": "Email", "visit": "Visit", "text": "Text message",
    "other": "Other", "competitor": "Lost to a competitor", "price": "Price",
    "timing": "Timing", "no_budget": "No budget", "no_response": "No response",
    "rule": "Routing rule", "manual": "By hand", "forward": "Forwarded",
    "self": "Self-sourced",
}


#: the standard answers in words, as a dealer or a manager reads them about the prospect
#: (the public form asks the same in the first person; capture/forms.py)
ANSWER_LABELS: dict[str, dict[str, str]] = {
    "timeline": {"now": "Right away", "3_months": "Within 3 months",
                 "6_months": "Within 6 months", "12_months": "Within a year",
                 "researching": "Just researching"},
    "budget": {"approved": "Approved", "planned": "Planned", "none": "No budget yet",
               "unknown": "Not sure"},
    "role": {"decision_maker": "Decides on the purchase",
             "influencer": "Advises on the purchase", "user": "Will use it",
             "other": "Other"},
    "interest": {"quote": "A price quote", "demo": "A demonstration",
                 "information": "Product information", "service": "Service or parts"},
}


def answer_label(value: object, question: str) -> str:
    """An inquiry's answer in words ("3_months" → "Within 3 months"); any other answer
    (a custom question's) as sent, underscores as spaces."""
    text = str(value)
    return ANSWER_LABELS.get(question, {}).get(text) or text.replace("_", " ")


def count_of(number: int | None, noun: str, plural: str = "") -> str:
    """"1 page", "12 pages", "1,200 pages": a count with its noun in the right number."""
    number = number or 0
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def phone_text(value: str | None, country: str | None = "US") -> str:
    """A phone number as people of its country write it ("(515) 555-0142"); another
    country's number in international form; as typed when it is not a phone number."""
    import phonenumbers

    if not value:
        return ""
    home = (country or "US").upper()
    try:
        number = phonenumbers.parse(value, home)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(number):
        return value
    national = phonenumbers.region_code_for_number(number) == home
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL
                                      if national else
                                      phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def init_app(app: Flask) -> None:
    """Register the filters and template globals."""

    # isoformat() rather than strftime(): the same text in a tenth of the time, and lists
    # show these on every row.
    @app.template_filter("when")
    def when(value: datetime | None) -> str:
        if value is None:
            return "—"
        if value.tzinfo is not UTC:  # the database gives UTC already
            value = value.astimezone(UTC)
        return f"{value.isoformat(' ', 'minutes')[:16]} UTC"

    @app.template_filter("day")
    def day(value: Any) -> str:
        if value is None:
            return "—"
        return (value.date() if isinstance(value, datetime) else value).isoformat()

    @app.template_filter("money")
    def money(value: Decimal | float | None) -> str:
        return "—" if value is None else f"${value:,.2f}"

    app.add_template_filter(count_of, "count_of")
    app.add_template_filter(phone_text, "phone")
    app.add_template_filter(answer_label, "answer_label")

    @app.template_filter("code_label")
    def code_label(value: object) -> str:
        return CODE_LABELS.get(str(value), str(value))

    @app.template_filter("status_label")
    def status_label(value: str | None) -> str:
        return STATUS_LABELS.get(value or "", value or "—")

    @app.template_global()
    def page_url(page: int) -> str:
        """The current URL with ``page`` replaced, keeping the other query arguments (each
        value of a repeated one). The query is encoded here, not passed to ``url_for`` as
        keywords: there ``endpoint``, ``_method``, ``_external``… or a name of the path's
        own would be taken as url_for's arguments, not as the query's."""
        args = MultiDict(request.args)
        args.setlist("page", [str(page)])
        path = url_for(request.endpoint or "home.index", **(request.view_args or {}))
        return f"{path}?{urlencode(list(args.items(multi=True)))}"

    @app.template_global()
    def query_url(endpoint: str | None = None, **changes: str) -> str:
        """The current query on ``endpoint`` (this page by default), ``changes`` set (an
        empty value drops its argument) and the page dropped: a list's sort links and its
        export keep the list's filters, as ``page_url`` keeps them across pages."""
        args = MultiDict(request.args)
        args.poplist("page")
        for name, value in changes.items():
            if value:
                args.setlist(name, [value])
            else:
                args.poplist(name)
        path = (url_for(endpoint) if endpoint else
                url_for(request.endpoint or "home.index", **(request.view_args or {})))
        query = urlencode(list(args.items(multi=True)))
        return f"{path}?{query}" if query else path
