"""User administration: list, invite or create, edit, reset password, (de)activate."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from portal.auth.services import request_password_link
from portal.core.errors import InvalidInput
from portal.core.forms import ConfirmForm, show_errors
from portal.core.models import User
from portal.core.pagination import paginate
from portal.core.web import admin_required
from portal.extensions import db
from portal.users import services
from portal.users.forms import UserCreateForm, UserEditForm, UserFilterForm

bp = Blueprint("users", __name__, url_prefix="/manage")


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id, options=[joinedload(User.partner)])
    if user is None:
        abort(404)
    return user


@bp.get("/users")
@admin_required
def users():  # type: ignore[no-untyped-def]
    """Everyone who can sign in, searchable by email or name and filtered by role."""
    filters = UserFilterForm(request.args)
    query = select(User).options(joinedload(User.partner)).order_by(User.email)
    filters.validate()  # a bad part of the filter is ignored (and marked), not the rest
    if filters.q.data and not filters.q.errors:
        term = filters.q.data.strip()
        query = query.where(or_(User.email.icontains(term, autoescape=True),
                                User.name.icontains(term, autoescape=True)))
    if filters.role.data and not filters.role.errors:
        query = query.where(User.role == filters.role.data)
    page = paginate(db.session, query, request.args.get("page", 1, type=int),
                             current_app.config["PAGE_SIZE"])
    return render_template("users/list.html", page=page, filters=filters,
                           roles=services.ROLE_LABELS)


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def user_new():  # type: ignore[no-untyped-def]
    """Create a user with a password, or invite them by email to choose one."""
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(
                db.session, email=form.email.data or "", name=form.name.data or "",
                role=form.role.data or "", partner_code=form.partner.data or None,
                password=form.password.data or None, partner_admin=bool(form.partner_admin.data),
            )
        except InvalidInput as error:
            show_errors(form, error)
        else:
            if user.password_hash is None:
                link = request_password_link(db.session, user, "invite")
                # Shown once so the admin can pass it on even when mail is not set up.
                flash(f"Invitation sent to {user.email}. Their link (shown once): {link}",
                      "success")
            else:
                flash(f"{user.email} can sign in now with the password you set.", "success")
            return redirect(url_for("users.users"), code=303)
    status = 422 if form.errors else 200
    return render_template("users/new.html", form=form), status


@bp.route("/users/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def user_edit(user_id: int):  # type: ignore[no-untyped-def]
    """Change a user's name, role and partner."""
    user = _user_or_404(user_id)
    form = UserEditForm(data={
        "name": user.name, "role": user.role,
        "partner": user.partner.code if user.partner else "",
        "partner_admin": user.partner_admin,
    } if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            services.update_user(
                db.session, user, acting=current_user, name=form.name.data or "",
                role=form.role.data or "", partner_code=form.partner.data or None,
                partner_admin=bool(form.partner_admin.data),
            )
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Saved {user.email}.", "success")
            return redirect(url_for("users.users"), code=303)
    status = 422 if form.errors else 200
    return render_template("users/edit.html", form=form, user=user,
                           action_form=ConfirmForm(), roles=services.ROLE_LABELS), status


@bp.route("/users/<int:user_id>/reset-password", methods=["GET", "POST"])
@admin_required
def user_reset_password(user_id: int):  # type: ignore[no-untyped-def]
    """Confirm, then sign the user out everywhere and send a link to choose a password."""
    user = _user_or_404(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            purpose = services.prepare_password_link(db.session, user)
        except InvalidInput as error:
            flash(error.message, "error")
            return redirect(url_for("users.user_edit", user_id=user.id), code=303)
        link = request_password_link(db.session, user, purpose)
        what = "A new invitation" if purpose == "invite" else "A password reset link"
        flash(f"{what} was sent to {user.email}; their sessions have ended. "
              f"The link (shown once): {link}", "success")
        return redirect(url_for("users.user_edit", user_id=user.id), code=303)
    return render_template(
        "users/confirm.html", form=form, user=user,
        title=f"Reset the password of {user.email}?",
        explanation="They are signed out everywhere at once (pages and API tokens) and get "
                    "an email with a link to choose a new password. Their current password "
                    "keeps working until they do.",
        button="Sign out and send the link", danger=False,
    )


@bp.route("/users/<int:user_id>/deactivate", methods=["GET", "POST"])
@admin_required
def user_deactivate(user_id: int):  # type: ignore[no-untyped-def]
    """Confirm, then deactivate: the user is signed out and their API tokens stop at once."""
    user = _user_or_404(user_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            services.set_user_active(db.session, user, acting=current_user, active=False)
        except InvalidInput as error:
            flash(error.message, "error")
            return redirect(url_for("users.user_edit", user_id=user.id), code=303)
        flash(f"{user.email} is deactivated and signed out everywhere.", "success")
        return redirect(url_for("users.users"), code=303)
    return render_template(
        "users/confirm.html", form=form, user=user,
        title=f"Deactivate {user.email}?",
        explanation="They are signed out everywhere at once, their API tokens stop working "
                    "and they cannot sign in again until reactivated. Their leads and "
                    "history stay as they are.",
        button="Deactivate", danger=True,
    )


@bp.post("/users/<int:user_id>/reactivate")
@admin_required
def user_reactivate(user_id: int):  # type: ignore[no-untyped-def]
    """Let a deactivated user sign in again (with the password they had)."""
    user = _user_or_404(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    services.set_user_active(db.session, user, acting=current_user, active=True)
    flash(f"{user.email} can sign in again.", "success")
    return redirect(url_for("users.user_edit", user_id=user.id), code=303)
