"""Email choices, the digest preview, unsubscribe links and the managers' outgoing mail."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.core import outgoing
from portal.core.errors import InvalidInput
from portal.core.forms import ConfirmForm, show_errors
from portal.core.mail import sink_messages, sunk_message
from portal.core.models import DigestFrequency, Role, User, utcnow
from portal.core.web import staff_required
from portal.extensions import db
from portal.notify import digests, forms, services

bp = Blueprint("notify", __name__)

#: an email's HTML shown in a frame of our own page: its inline styles apply, nothing of
#: it runs or loads, and only the portal's own pages may frame it
EMAIL_FRAME_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
}


# --- a user's choices ------------------------------------------------------------------------


def _firm_defaults(user: User) -> services.Choices:
    """What the user would get with no choices of their own."""
    return services.merge(user, None, user.partner)


def _forms(user: User, **given: Any) -> dict[str, Any]:
    own = services.own_preference(db.session, user)
    firm = _firm_defaults(user)
    choice_form = given.get("choices_form") or forms.ChoicesForm(
        formdata=None, alerts=(own.alerts if own else "") or "",
        frequency=(own.frequency if own else "") or "",
        hour="" if own is None or own.digest_hour is None else str(own.digest_hour),
        time_zone=(own.time_zone if own else "") or "")
    choice_form.fill(firm.alerts, firm.frequency, firm.time_zone)
    context: dict[str, Any] = {"choices_form": choice_form,
                               "effective": services.choices(db.session, user),
                               "labels": {**{str(k): v for k, v in services.ALERT_LABELS.items()},
                                          **{str(k): v for k, v in
                                             services.DIGEST_LABELS.items()}}}
    partner = user.partner
    if partner is not None and user.partner_admin:
        firm_form = given.get("firm_form") or forms.FirmForm(
            formdata=None, alerts=partner.alert_default, frequency=partner.digest_default,
            time_zone=partner.time_zone)
        context["firm_form"] = firm_form.fill(services.portal_zone())
        context["partner"] = partner
    return context


@bp.get("/account/email")
@login_required
def preferences():  # type: ignore[no-untyped-def]
    """Which alerts and digests the signed-in user gets, when, in which time zone."""
    return render_template("notify/preferences.html", **_forms(current_user))


@bp.post("/account/email")
@login_required
def save_preferences():  # type: ignore[no-untyped-def]
    form = forms.ChoicesForm()
    firm = _firm_defaults(current_user)
    form.fill(firm.alerts, firm.frequency, firm.time_zone)
    if form.validate_on_submit():
        try:
            services.save_choices(db.session, current_user, alerts=form.alerts.data or "",
                                  frequency=form.frequency.data or "",
                                  hour=form.hour.data, time_zone=form.time_zone.data or "")
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash("Email choices saved.", "success")
            return redirect(url_for("notify.preferences"), 303)
    db.session.rollback()
    return render_template("notify/preferences.html",
                           **_forms(current_user, choices_form=form)), 422


@bp.post("/account/email/firm")
@login_required
def save_firm():  # type: ignore[no-untyped-def]
    """A partner administrator sets the firm's defaults."""
    partner = current_user.partner
    if partner is None or not current_user.partner_admin:
        abort(403)
    form = forms.FirmForm().fill(services.portal_zone())
    if form.validate_on_submit():
        try:
            services.save_firm_defaults(db.session, partner, alerts=form.alerts.data or "",
                                        frequency=form.frequency.data or "",
                                        time_zone=form.time_zone.data or "")
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Defaults saved for {partner.name}.", "success")
            return redirect(url_for("notify.preferences"), 303)
    db.session.rollback()
    return render_template("notify/preferences.html",
                           **_forms(current_user, firm_form=form)), 422


# --- the digest preview ----------------------------------------------------------------------


def _previewed() -> tuple[User, str]:
    """Whose digest, for which period: one's own; a partner administrator's colleagues';
    anyone's for staff. Anyone else's is 404."""
    user: User = current_user
    raw = request.args.get("user", "")
    if raw:
        other = db.session.get(User, int(raw)) if re.fullmatch(r"[0-9]{1,9}", raw) else None
        allowed = other is not None and (
            current_user.is_staff or other.id == current_user.id
            or (current_user.partner_admin and other.partner_id is not None
                and other.partner_id == current_user.partner_id
                and other.role == Role.PARTNER))
        if not allowed:
            abort(404)
        assert other is not None
        user = other
    period = request.args.get("period", "")
    if period not in (DigestFrequency.DAILY, DigestFrequency.WEEKLY):
        chosen = services.choices(db.session, user).frequency
        period = chosen if chosen != DigestFrequency.OFF else DigestFrequency.DAILY
    return user, str(period)


def _preview(user: User, period: str) -> digests.DigestEmail | str:
    now = utcnow()
    choice = services.choices(db.session, user)
    window = digests.current_period(period, choice.time_zone, choice.hour, now, by_hand=True)
    assert window is not None
    email = digests.digest_email(db.session, user, window, now)
    if not isinstance(email, str) and user.id != current_user.id:
        # Someone else's unsubscribe link would turn off their digest: shown inert.
        email.links["unsubscribe"] = "#"
    return email


@bp.get("/account/email/preview")
@login_required
def preview():  # type: ignore[no-untyped-def]
    """The digest a user would get for a period if it were sent now."""
    user, period = _previewed()
    email = _preview(user, period)
    text = None if isinstance(email, str) else render_template(
        "emails/digest.txt", email=email, now=utcnow())
    return render_template("notify/preview.html", user=user, period=period, email=email,
                           text=text)


@bp.get("/account/email/preview/body")
@login_required
def preview_body():  # type: ignore[no-untyped-def]
    """The preview's HTML part, as a mail client would show it (in the page's frame)."""
    user, period = _previewed()
    email = _preview(user, period)
    if isinstance(email, str):
        abort(404)
    response = render_template("emails/digest.html", email=email, now=utcnow())
    return response, 200, EMAIL_FRAME_HEADERS


# --- unsubscribe -----------------------------------------------------------------------------


@bp.route("/email/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str):  # type: ignore[no-untyped-def]
    """From an email, signed in or not: GET asks, POST turns it off (a mail client's
    one-click POST too: the signed token is the proof, so no CSRF token is asked)."""
    found = services.read_unsubscribe_token(token)
    user = db.session.get(User, found[0]) if found else None
    if found is None or user is None:
        return render_template("notify/unsubscribe.html", invalid=True), 404
    what = found[1]
    if request.method == "POST":
        services.turn_off(db.session, user, what)
        return render_template("notify/unsubscribe.html", done=True, what=what, user=user)
    return render_template("notify/unsubscribe.html", what=what, user=user,
                           form=ConfirmForm(formdata=None))


# --- outgoing mail, for staff --------------------------------------------------------------


@bp.get("/manage/mail")
@staff_required
def outbox():  # type: ignore[no-untyped-def]
    """Every email of every kind that waits (queued, retrying with its next try, failed
    with the reason), and the alerts and digests of the last day by status."""
    since = utcnow() - timedelta(days=1)
    return render_template("notify/outbox.html", counts=services.outbox_counts(db.session, since),
                           waiting=outgoing.counts(db.session),
                           rows=outgoing.waiting(db.session), form=ConfirmForm(formdata=None),
                           sink=sink_messages())


@bp.get("/manage/mail/sink/<name>")
@staff_required
def sunk(name: str):  # type: ignore[no-untyped-def]
    """One email of the development sink (no MAIL_SERVER): what it would have said."""
    message = sunk_message(name)
    if message is None:
        abort(404)
    return render_template("notify/sunk.html", message=message, name=name)


@bp.get("/manage/mail/sink/<name>/body")
@staff_required
def sunk_body(name: str):  # type: ignore[no-untyped-def]
    """That email's HTML part, as a mail client would show it (in the page's frame)."""
    message = sunk_message(name)
    if message is None or not message.html:
        abort(404)
    return message.html, 200, EMAIL_FRAME_HEADERS


@bp.post("/manage/mail/<int:row_id>/retry")
@staff_required
def retry(row_id: int):  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        row = services.retry(db.session, row_id)
    except InvalidInput as error:
        flash(error.message, "error")
    else:
        flash(f"Sending again to {row.user.email}.", "success")
    return redirect(url_for("notify.outbox"), 303)


@bp.post("/manage/mail/<kind>/<int:row_id>/retry")
@staff_required
def retry_one(kind: str, row_id: int):  # type: ignore[no-untyped-def]
    """One failed email of any kind again, from now."""
    if not ConfirmForm().validate_on_submit() or kind not in outgoing.KIND_BY_KEY:
        abort(400)
    if outgoing.retry_failed(db.session, kind=kind, row_id=row_id):
        flash("Sending it again.", "success")
    else:
        flash("Only a failed email can be sent again.", "error")
    return redirect(url_for("notify.outbox"), 303)


@bp.post("/manage/mail/retry")
@staff_required
def retry_all():  # type: ignore[no-untyped-def]
    """Every failed email of every kind again (the mail server is back)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = outgoing.retry_failed(db.session)
    flash(f"{count:,} failed email{'' if count == 1 else 's'} will be sent again now."
          if count else "No failed emails to send again.", "success")
    return redirect(url_for("notify.outbox"), 303)
