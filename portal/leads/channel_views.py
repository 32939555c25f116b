"""The manufacturer's channel settings page (managers and admins)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.core import channel
from portal.core.web import staff_required
from portal.extensions import db
from portal.leads.forms import ChannelSettingsForm

bp = Blueprint("channel", __name__, url_prefix="/manage")


@bp.get("/channel")
@staff_required
def settings():  # type: ignore[no-untyped-def]
    """The channel-wide settings: contact details hidden from partners until they accept."""
    current = channel.settings(db.session)
    form = ChannelSettingsForm(
        formdata=None, hide_contacts_until_accepted=current.hide_contacts_until_accepted)
    return render_template("leads/channel_settings.html", form=form, current=current)


@bp.post("/channel")
@staff_required
def save_settings():  # type: ignore[no-untyped-def]
    """Save the channel settings."""
    form = ChannelSettingsForm()
    if not form.validate_on_submit():
        current = channel.settings(db.session)
        return render_template("leads/channel_settings.html", form=form,
                               current=current), 422
    hide = bool(form.hide_contacts_until_accepted.data)
    channel.save_settings(db.session, current_user, hide_contacts_until_accepted=hide)
    flash("Saved: partners see contact details " +
          ("once they accept an offer." if hide else "as soon as a lead is offered."),
          "success")
    return redirect(url_for("channel.settings"), 303)
