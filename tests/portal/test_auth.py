"""Sign-in, throttling, sessions, invitations, resets and API tokens, as a person meets them."""

from __future__ import annotations

import re
from email.message import Message

import pytest
from sqlalchemy import select

from portal.core.models import LoginAttempt, User
from tests.conftest import PASSWORD

NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture(autouse=True)
def _csrf_off(app):
    """Post forms without fetching tokens; the logout test turns CSRF back on to check it."""
    app.config["WTF_CSRF_ENABLED"] = False


def body_of(message: Message) -> str:
    """The decoded text part of a received email."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text part")


def link_in(message: Message, kind: str) -> str:
    """The path of the invite/reset link in an email (the host is PORTAL_BASE_URL)."""
    match = re.search(rf"http://portal\.test(/auth/{kind}/\S+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


def csrf_token_from(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client, email, password, **extra):
    return client.post("/auth/login", data={"email": email, "password": password, **extra})


def test_sign_in_redirects_to_dashboard(client, make_user):
    user = make_user("manager")
    response = sign_in(client, user.email, PASSWORD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    dashboard = client.get("/", follow_redirects=True)  # a manager's is the channel overview
    assert dashboard.status_code == 200
    assert user.name in dashboard.get_data(as_text=True)


def test_sign_in_ignores_case_and_spaces_in_email(client, make_user):
    user = make_user("manager", email="mixed@portal.test")
    assert sign_in(client, "  MIXED@Portal.test ", PASSWORD).status_code == 303
    assert user.last_login_at is not None


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_user):
    user = make_user("manager")
    wrong = sign_in(client, user.email, "not the password")
    unknown = sign_in(client, "nobody@portal.test", PASSWORD)
    assert wrong.status_code == unknown.status_code == 200
    errors = [re.findall(r'<p class="error"[^>]*>([^<]*)</p>', r.get_data(as_text=True))
              for r in (wrong, unknown)]
    # Neither answer tells whether the account exists.
    assert errors[0] == errors[1] == ["Wrong email or password."]
    assert client.get("/").status_code == 302


def test_too_many_failures_make_that_address_wait_even_with_the_right_password(
        app, client, make_user, session):
    # (Other addresses are not held up: tests/portal/test_auth_throttle.py.)
    user = make_user("partner", partner=None)
    other = make_user("manager")
    limit = app.config["LOGIN_FREE_FAILURES"]
    assert limit == 5
    for _ in range(limit):
        assert sign_in(client, user.email, "guessing wrong").status_code == 200
    refused = sign_in(client, user.email, PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302
    # Another account from the same address is not affected.
    assert sign_in(client, other.email, PASSWORD).status_code == 303
    failures = session.scalars(select(LoginAttempt).where(
        LoginAttempt.email == user.email, LoginAttempt.success.is_(False))).all()
    assert len(failures) == limit


def test_too_many_failures_from_one_address_are_refused(app, client, make_user):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    user = make_user("manager")
    attacker = {"REMOTE_ADDR": "203.0.113.9"}
    for n in range(3):
        client.post("/auth/login", data={"email": f"guess{n}@portal.test", "password": "x"},
                    environ_base=attacker)
    refused = client.post("/auth/login", data={"email": user.email, "password": PASSWORD},
                          environ_base=attacker)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.get_data(as_text=True)
    elsewhere = client.post("/auth/login", data={"email": user.email, "password": PASSWORD},
                            environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert elsewhere.status_code == 303


def test_remember_me_is_off_unless_ticked(app, client, make_user, session):
    user = make_user("manager")
    session.commit()  # the GET below rolls back whatever is not committed
    page = client.get("/auth/login").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="remember"[^>]*>', page)
    assert "checked" not in re.search(r'<input[^>]*name="remember"[^>]*>', page).group(0)
    assert sign_in(client, user.email, PASSWORD).status_code == 303
    assert client.get_cookie("remember_token") is None

    ticked = app.test_client()
    assert sign_in(ticked, user.email, PASSWORD, remember="y").status_code == 303
    assert ticked.get_cookie("remember_token") is not None


def test_logout_is_post_only_and_needs_csrf(app, client, make_user):
    user = make_user("manager")
    sign_in(client, user.email, PASSWORD)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.get("/auth/logout").status_code == 405
    refused = client.post("/auth/logout")
    assert refused.status_code == 400
    dashboard = client.get("/", follow_redirects=True)
    assert dashboard.status_code == 200  # still signed in
    token = csrf_token_from(dashboard.get_data(as_text=True))
    response = client.post("/auth/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/auth/login"
    assert client.get("/").status_code == 302


def test_next_cannot_send_you_to_another_site(client, make_user):
    user = make_user("manager")
    for target in ("//evil.test", "https://evil.test/x", "/\\evil.test", "/\t/evil.test",
                   "/\n/evil.test", "javascript:alert(1)"):
        response = client.post("/auth/login", query_string={"next": target},
                               data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 303
        assert response.headers["Location"] == "/", target
        client.post("/auth/logout")
    response = client.post("/auth/login", query_string={"next": "/manage/?page=2"},
                           data={"email": user.email, "password": PASSWORD})
    assert response.headers["Location"] == "/manage/?page=2"


def test_deactivated_users_session_stops_at_once(app, client, auth, make_user, make_partner,
                                                 session):
    partner_user = auth.login("partner", partner=make_partner())
    assert client.get("/").status_code == 200
    admin_client = app.test_client()
    admin = make_user("admin")
    sign_in(admin_client, admin.email, PASSWORD)
    response = admin_client.post(f"/manage/users/{partner_user.id}/deactivate")
    assert response.status_code == 303

    after = client.get("/")
    assert after.status_code == 302
    assert "/auth/login" in after.headers["Location"]
    # And the deactivated person cannot sign in again.
    again = sign_in(client, partner_user.email, PASSWORD)
    assert "Wrong email or password." in again.get_data(as_text=True)


def test_invitation_end_to_end(app, client, auth, outbox, session, make_partner):
    partner = make_partner("D7001")
    auth.login("admin")
    response = client.post("/manage/users/new", data={
        "email": "New.Dealer@Example.com", "name": "Nora Dealer", "role": "partner",
        "partner": "D7001", "password": "",
    })
    assert response.status_code == 303
    user = session.scalars(select(User).where(User.email == "new.dealer@example.com")).one()
    assert user.password_hash is None and user.partner_id == partner.id

    assert len(outbox) == 1
    message = outbox[0]
    assert message["To"] == "new.dealer@example.com"
    assert "invited" in message["Subject"]
    path = link_in(message, "invite")
    # The admin sees the same link once, for when mail is not set up.
    assert f"http://portal.test{path}" in client.get("/manage/users").get_data(as_text=True)
    assert f"http://portal.test{path}" not in client.get("/manage/users").get_data(as_text=True)

    invited = app.test_client()
    page = invited.get(path)
    assert page.status_code == 200
    assert "new.dealer@example.com" in page.get_data(as_text=True)
    mismatch = invited.post(path, data={"password": NEW_PASSWORD, "confirm": "something else"})
    assert "The two passwords differ." in mismatch.get_data(as_text=True)
    done = invited.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 303
    assert done.headers["Location"] == "/auth/login"

    assert sign_in(invited, "new.dealer@example.com", NEW_PASSWORD).status_code == 303
    dashboard = invited.get("/")
    assert dashboard.status_code == 200
    assert partner.name in dashboard.get_data(as_text=True)

    # The link was used: it cannot set the password a second time.
    reused = app.test_client().get(path)
    assert reused.status_code == 404
    assert "no longer works" in reused.get_data(as_text=True)
    assert app.test_client().post(
        path, data={"password": "another password!", "confirm": "another password!"}
    ).status_code == 404


def test_reset_link_flow(app, client, outbox, make_user):
    user = make_user("manager")
    response = client.post("/auth/forgot", data={"email": user.email.upper()})
    assert response.status_code == 303
    assert len(outbox) == 1
    path = link_in(outbox[0], "reset")

    assert client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
                       ).status_code == 303
    assert "Wrong email or password." in sign_in(client, user.email, PASSWORD).get_data(
        as_text=True)
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 303
    assert app.test_client().get(path).status_code == 404


def test_forgot_password_says_the_same_for_unknown_addresses(client, outbox):
    response = client.post("/auth/forgot", data={"email": "nobody@portal.test"},
                           follow_redirects=True)
    assert "If that address has an account" in response.get_data(as_text=True)
    assert outbox == []


def test_passwords_are_stored_hashed(client, auth, session):
    auth.login("admin")
    client.post("/manage/users/new", data={
        "email": "hashed@portal.test", "name": "H", "role": "manager",
        "password": "plain text secret",
    })
    user = session.scalars(select(User).where(User.email == "hashed@portal.test")).one()
    assert user.password_hash
    assert "plain text secret" not in user.password_hash
    assert user.password_hash.startswith(("pbkdf2:", "scrypt:"))
    assert user.check_password("plain text secret")
    assert not user.check_password("Plain text secret")


def test_new_passwords_hash_with_argon2id_at_owasp_parameters(app, auth, client, session,
                                                              make_user, monkeypatch):
    monkeypatch.setitem(app.config, "PASSWORD_HASH_METHOD", "argon2id")  # the default
    user = make_user("manager")
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not user.check_password(PASSWORD.upper())
    auth.login_as(user)
    home = client.get("/", follow_redirects=True)
    assert home.status_code == 200 and home.request.path != "/auth/login"  # signed in


def test_an_older_hash_is_made_anew_at_sign_in_and_still_works(app, auth, client, session,
                                                               make_user, monkeypatch):
    from werkzeug.security import generate_password_hash

    user = make_user("manager")
    user.password_hash = generate_password_hash(PASSWORD, method="scrypt:1024:8:1")
    session.flush()
    monkeypatch.setitem(app.config, "PASSWORD_HASH_METHOD", "argon2id")
    # A wrong password leaves the old hash as it is.
    refused = client.post("/auth/login", data={"email": user.email, "password": "wrong one"})
    assert "Wrong email or password." in refused.get_data(as_text=True)
    session.refresh(user)
    assert user.password_hash.startswith("scrypt:1024:8:1$")
    auth.login_as(user)
    session.refresh(user)
    assert user.password_hash.startswith("$argon2id$")
    auth.logout()
    auth.login_as(user)  # the new hash takes the same password


def test_a_hash_with_weaker_parameters_of_the_same_method_is_made_anew(
        app, auth, session, make_user, monkeypatch):
    from werkzeug.security import generate_password_hash

    user = make_user("manager")
    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:500")
    session.flush()
    # Werkzeug's own iterations for the method named without them (1,000,000 today).
    monkeypatch.setitem(app.config, "PASSWORD_HASH_METHOD", "pbkdf2:sha256")
    auth.login_as(user)
    session.refresh(user)
    method = user.password_hash.split("$", 1)[0]
    assert method.startswith("pbkdf2:sha256:") and int(method.rsplit(":", 1)[1]) > 500


def test_an_unknown_hash_method_stops_the_start_not_the_first_sign_in(tmp_path,
                                                                        monkeypatch):
    from portal import create_app

    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="PASSWORD_HASH_METHOD 'argon2' is not a method"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "SECRET_KEY": "k",
                    "PASSWORD_HASH_METHOD": "argon2"})


def test_an_unknown_email_is_refused_like_a_wrong_password_with_argon2id(app, client,
                                                                          monkeypatch):
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    monkeypatch.setitem(app.config, "PASSWORD_HASH_METHOD", "argon2id")
    response = client.post("/auth/login", data={"email": "nobody@portal.test",
                                                "password": "whatever it is"})
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_api_token_for_good_credentials_only_and_dies_with_password_change(
        app, client, make_user, outbox):
    user = make_user("manager")
    bad = client.post("/api/v1/tokens", json={"email": user.email, "password": "nope"})
    assert bad.status_code == 401
    assert bad.json["error"] == "unauthorized"
    assert "token" not in bad.json

    good = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert good.status_code == 201
    token = good.json["token"]
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200
    assert me.json["email"] == user.email

    client.post("/auth/forgot", data={"email": user.email})
    path = link_in(outbox[-1], "reset")
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    dead = client.get("/api/v1/me", headers=headers)
    assert dead.status_code == 401
    assert dead.json["error"] == "unauthorized"
    fresh = client.post("/api/v1/tokens", json={"email": user.email, "password": NEW_PASSWORD})
    assert fresh.status_code == 201


def test_api_token_endpoint_is_throttled_like_the_sign_in_page(client, make_user):
    user = make_user("manager")
    for _ in range(5):
        client.post("/api/v1/tokens", json={"email": user.email, "password": "nope"})
    refused = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json["error"] == "throttled"
