"""Sessions end when the person says so: a copied cookie or remember token of a sign-in
dies at its sign-out; "sign out everywhere" and a new password end every sign-in."""

from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _csrf_off(app):
    app.config["WTF_CSRF_ENABLED"] = False


def sign_in(client, user, **extra):
    response = client.post("/auth/login",
                           data={"email": user.email, "password": PASSWORD, **extra})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response


def copy_cookie(source, target, name):
    """What a thief does with a cookie read off a shared computer or a proxy log."""
    cookie = source.get_cookie(name)
    assert cookie is not None, f"no {name} cookie"
    target.set_cookie(name, cookie.value)


def signed_in(client) -> bool:
    return client.get("/auth/account").status_code == 200


def test_a_copied_session_cookie_stops_working_at_sign_out(app, client, make_user):
    user = make_user("manager")
    sign_in(client, user)
    thief = app.test_client()
    copy_cookie(client, thief, "session")
    assert signed_in(thief)

    assert client.post("/auth/logout").status_code == 303
    assert thief.get("/auth/account").status_code == 302  # to the sign-in page
    assert not signed_in(client)


def test_a_copied_remember_token_stops_working_at_sign_out(app, client, make_user):
    user = make_user("manager")
    sign_in(client, user, remember="y")
    thief = app.test_client()
    copy_cookie(client, thief, "remember_token")  # no session cookie: only the token
    assert signed_in(thief)

    client.post("/auth/logout")
    later = app.test_client()
    copy_cookie(thief, later, "remember_token")
    assert not signed_in(later)
    assert not signed_in(thief)


def test_signing_out_on_one_device_leaves_the_others_signed_in(app, make_user):
    user = make_user("partner", partner=None)
    phone, desk = app.test_client(), app.test_client()
    sign_in(phone, user)
    sign_in(desk, user, remember="y")
    phone.post("/auth/logout")
    assert not signed_in(phone)
    assert signed_in(desk)


def test_sign_out_everywhere_ends_every_sign_in_and_api_token(app, client, make_user):
    user = make_user("manager")
    other_device = app.test_client()
    sign_in(client, user)
    sign_in(other_device, user, remember="y")
    remembered = app.test_client()
    copy_cookie(other_device, remembered, "remember_token")
    token = client.post("/api/v1/tokens",
                        json={"email": user.email, "password": PASSWORD}).json["token"]

    page = client.get("/auth/account").get_data(as_text=True)
    assert "Sign out everywhere" in page
    response = client.post("/auth/account/sign-out-everywhere")
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/login"
    for each in (client, other_device, remembered):
        assert not signed_in(each)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    assert signed_in(app.test_client()) is False
    fresh = app.test_client()
    sign_in(fresh, user)  # the password itself still works
    assert signed_in(fresh)


def test_a_new_password_ends_the_sign_ins_made_with_the_old_one(app, client, make_user,
                                                                   session):
    from portal.auth import services

    user = make_user("manager")
    sign_in(client, user, remember="y")
    remembered = app.test_client()
    copy_cookie(client, remembered, "remember_token")
    services.set_password(user, "another long passphrase")
    session.commit()  # a reading request rolls back what the test left uncommitted
    assert not signed_in(client)
    assert not signed_in(remembered)


def test_the_account_page_is_in_the_account_menu(client, make_user):
    user = make_user("manager")
    sign_in(client, user)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert re.search(r'<a href="/auth/account"[^>]*>', page)


def test_no_sign_in_outlives_the_remember_cookie_and_the_sweep_forgets_old_ones(
        app, client, make_user, session):
    from datetime import timedelta

    from sqlalchemy import func, select

    from portal.auth import services, sessions
    from portal.core.models import LoginAttempt, SignIn, utcnow

    user = make_user("manager")
    sign_in(client, user, remember="y")
    cookie_id = f"{user.id}:{user.session_version}:{user.sign_in_secret}"
    now = utcnow()
    days = app.config["REMEMBER_COOKIE_DURATION_DAYS"]
    assert sessions.signed_in_user(session, cookie_id, now + timedelta(days=days - 1)) == user
    assert sessions.signed_in_user(session, cookie_id, now + timedelta(days=days + 1)) is None

    session.add(LoginAttempt(email=user.email, address="192.0.2.1", success=False,
                             at=now - timedelta(days=1)))
    session.flush()
    assert sessions.forget_old_sign_ins(session, now + timedelta(days=days + 1)) == 1
    assert services.forget_old_attempts(session, now) == 1  # the day-old failure
    assert session.scalar(select(func.count()).select_from(SignIn)) == 0
    # The success stays: it makes 127.0.0.1 this account's usual address.
    assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1
