"""Sign in, sign out, accept an invitation, reset a forgotten password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal.auth import services, sessions
from portal.auth.forms import ForgotPasswordForm, LoginForm, SetPasswordForm
from portal.core.errors import InvalidInput
from portal.core.forms import ConfirmForm
from portal.core.models import User
from portal.extensions import db, login_manager

bp = Blueprint("auth", __name__, url_prefix="/auth")

login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The cookie's user while its sign-in is open (sign-out, a new password, "sign out
    everywhere" and deactivation end it)."""
    return sessions.signed_in_user(db.session, user_id)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect would let a phishing link bounce through us.
    # Browsers read a backslash as "/" and drop tabs and newlines, so "/<backslash>evil"
    # or "/<tab>/evil" would become "//evil": refuse such targets outright.
    if target and target.startswith("/") and not target.startswith("//"):
        if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
            return url_for("home.index")
        if not urlsplit(target).netloc:
            return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """Sign in with email and password; failures slow down further tries (services)."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(
                db.session, form.email.data or "", form.password.data or "",
                request.remote_addr or "unknown",
            )
        except services.SignInRefused as refused:
            # The failed attempt is recorded: commit it (a 4xx would roll it back).
            db.session.commit()
            form.password.errors = [refused.message]
            if refused.throttled:
                page = render_template("auth/login.html", form=form)
                return page, 429, {"Retry-After": str(refused.retry_after())}
        else:
            sessions.start_sign_in(db.session, user)
            login_user(user, remember=bool(form.remember.data))
            return redirect(_safe_next(request.args.get("next")), code=303)
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():  # type: ignore[no-untyped-def]
    """Sign out (a POST with CSRF, so a link elsewhere cannot sign you out): this sign-in
    ends, so a copy of its session or remember cookie stops working too."""
    sessions.end_sign_in(db.session, current_user._get_current_object())
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), code=303)


def _password_page(token: str, purpose: str):  # type: ignore[no-untyped-def]
    user = services.user_for_token(db.session, token, purpose)
    if user is None:
        return render_template("auth/link_invalid.html"), 404
    form = SetPasswordForm()
    if form.validate_on_submit():
        problem = services.password_problem(form.password.data or "", user.email)
        if problem:
            form.password.errors = [problem]
        else:
            services.set_password(user, form.password.data or "")
            flash("Your password is set. Sign in with it now.", "success")
            return redirect(url_for("auth.login"), code=303)
    return render_template("auth/set_password.html", form=form, user=user, purpose=purpose)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):  # type: ignore[no-untyped-def]
    """An invited user chooses a password."""
    return _password_page(token, "invite")


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):  # type: ignore[no-untyped-def]
    """A user with a reset link chooses a new password."""
    return _password_page(token, "reset")


@bp.route("/forgot", methods=["GET", "POST"])
def forgot_password():  # type: ignore[no-untyped-def]
    """Mail a reset link; the answer is the same whether or not the account exists."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = services.normalise_email(form.email.data or "")
        user = db.session.scalars(select(User).where(User.email == email)).first()
        if user is not None and user.active:
            services.request_password_link(db.session, user, "reset")
        flash("If that address has an account, a link to reset the password is on its way.",
              "info")
        return redirect(url_for("auth.login"), code=303)
    return render_template("auth/forgot.html", form=form)


@bp.get("/account")
@login_required
def account():  # type: ignore[no-untyped-def]
    """Your account: your API tokens (revoke each) and signing out everywhere."""
    return render_template("auth/account.html", form=ConfirmForm(),
                           tokens=sessions.api_tokens_of(db.session, current_user))


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():  # type: ignore[no-untyped-def]
    """End every sign-in of yours (other devices too) and every API token."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    sessions.end_every_sign_in(db.session, current_user._get_current_object())
    logout_user()
    flash("You are signed out everywhere, and your API tokens no longer work.", "info")
    return redirect(url_for("auth.login"), code=303)


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int):  # type: ignore[no-untyped-def]
    """Revoke one of your API tokens: it answers 401 from now on."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        row = sessions.revoke_api_token(db.session, current_user, token_id)
    except InvalidInput as error:
        flash(error.message, "info")
    else:
        flash(f"Token {row.prefix}… is revoked.", "success")
    return redirect(url_for("auth.account"), code=303)
