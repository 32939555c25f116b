"""User administration pages: list, create or invite, edit, reset, (de)activate."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from portal.core.models import User
from tests.conftest import PASSWORD


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def by_email(session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email)).first()


def text(response) -> str:
    return response.get_data(as_text=True)


def mail_text(message) -> str:
    """The decoded text part of a received email."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def sign_in(client, user, password: str = PASSWORD):
    return client.post("/auth/login", data={"email": user.email, "password": password})


@pytest.fixture
def admin(auth):
    """An administrator, signed in on ``client``."""
    return auth.login("admin")


# --- who may open the pages --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/manage/users", "/manage/users/new"])
def test_managers_and_partners_cannot_manage_users(app, auth, client, make_user, make_partner,
                                                   session, path):
    target = make_user("partner", partner=make_partner())
    auth.login("manager")
    assert client.get(path).status_code == 403
    assert client.get(f"/manage/users/{target.id}/edit").status_code == 403
    assert client.post(f"/manage/users/{target.id}/deactivate").status_code == 403
    assert by_email(session, target.email).active

    partner_client = app.test_client()
    sign_in(partner_client, target)
    assert partner_client.get(path).status_code == 403
    assert partner_client.post(f"/manage/users/{target.id}/reset-password").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/manage/users")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_settings_menu_links_the_admin_pages_for_admins_only(auth, client, app, make_user):
    auth.login("admin")
    page = text(client.get("/manage/"))
    for path in ("/manage/partners", "/manage/users", "/manage/product-lines",
                 "/manage/competitors", "/manage/campaigns", "/manage/sources"):
        assert f'href="{path}"' in page
    manager = app.test_client()
    manager_user = make_user("manager")
    sign_in(manager, manager_user)
    page = text(manager.get("/manage/"))
    assert 'href="/manage/campaigns"' in page
    assert 'href="/manage/users"' not in page


# --- list --------------------------------------------------------------------------------


def test_list_shows_role_partner_status_and_last_sign_in(admin, client, make_user, make_partner,
                                                        session):
    dealer = make_partner("D4242", name="Hawkeye Tractors")
    partner_user = make_user("partner", partner=dealer, email="pat@hawkeye.test",
                             partner_admin=True)
    gone = make_user("manager", email="gone@portal.test", active=False)
    session.commit()
    page = text(client.get("/manage/users"))
    assert "pat@hawkeye.test" in page
    assert "D4242 · Hawkeye Tractors" in html.unescape(page)
    assert "partner admin" in page
    assert "Channel manager" in page
    assert "Deactivated" in page
    # The admin who signed in has a last sign-in time; the others show a dash.
    assert re.search(rf"{admin.email}.*?\d{{4}}-\d\d-\d\d \d\d:\d\d UTC", page, re.S)
    assert f"/manage/users/{partner_user.id}/edit" in page
    assert f"/manage/users/{gone.id}/edit" in page


def test_list_searches_email_and_name_and_filters_role(admin, client, make_user, session):
    # (the factory names users itself: rename after)
    make_user("manager", email="alice@north.test").name = "Alice North"
    make_user("manager", email="bob@south.test").name = "Bob Percent%"
    make_user("admin", email="carol@north.test").name = "Carol"
    session.commit()

    page = text(client.get("/manage/users", query_string={"q": "NORTH"}))
    assert "alice@north.test" in page and "carol@north.test" in page
    assert "bob@south.test" not in page

    page = text(client.get("/manage/users", query_string={"q": "bob percent"}))
    assert "bob@south.test" in page and "alice@north.test" not in page

    # LIKE wildcards typed by the admin are taken literally.
    page = text(client.get("/manage/users", query_string={"q": "%"}))
    assert "bob@south.test" in page and "alice@north.test" not in page

    page = text(client.get("/manage/users", query_string={"q": "north", "role": "admin"}))
    assert "carol@north.test" in page and "alice@north.test" not in page

    page = text(client.get("/manage/users", query_string={"q": "nobody-matches"}))
    assert "No users match." in page


def test_list_paginates(app, admin, client, make_user, session):
    app.config["PAGE_SIZE"] = 2
    for n in range(4):
        make_user("manager", email=f"m{n}@page.test")
    session.commit()
    first = text(client.get("/manage/users", query_string={"q": "page.test"}))
    assert "Page 1 of 2 · 4 in all" in html.unescape(first)
    assert "m0@page.test" in first and "m1@page.test" in first
    assert "m2@page.test" not in first
    assert 'rel="next"' in first and "q=page.test" in first
    second = text(client.get("/manage/users", query_string={"q": "page.test", "page": 2}))
    assert "m2@page.test" in second and "m3@page.test" in second
    assert "m0@page.test" not in second
    # A page past the end shows the last one rather than an empty list.
    beyond = text(client.get("/manage/users", query_string={"q": "page.test", "page": 99}))
    assert "Page 2 of 2" in beyond


def test_user_list_does_not_query_per_row(admin, client, make_user, make_partner, session,
                                          count_queries):
    def measure() -> tuple[int, str]:
        session.commit()
        client.get("/manage/users")  # same starting point each time: a fresh identity map
        with count_queries() as counter:
            response = client.get("/manage/users", query_string={"role": "partner"})
        return counter.count, text(response)

    for n in range(3):
        make_user("partner", partner=make_partner(f"Q{n}"))
    few, _ = measure()
    for n in range(3, 12):
        make_user("partner", partner=make_partner(f"Q{n}"))
    more, page = measure()
    assert "Q11" in page
    assert more == few


# --- create ------------------------------------------------------------------------------


def test_create_with_password_can_sign_in_at_once(app, admin, client, session, make_partner,
                                                  outbox):
    dealer = make_partner("D9001")
    response = client.post("/manage/users/new", data={
        "email": " Dana@Dealer.test ", "name": "Dana  Dealer", "role": "partner",
        "partner": "D9001", "partner_admin": "y", "password": "a fine password",
    })
    assert response.status_code == 303
    assert response.headers["Location"] == "/manage/users"
    user = by_email(session, "dana@dealer.test")
    assert user.name == "Dana Dealer"
    assert user.partner_id == dealer.id and user.partner_admin
    assert outbox == []  # a password was set: no invitation
    assert "can sign in now" in text(client.get("/manage/users"))

    other = app.test_client()
    assert sign_in(other, user, "a fine password").status_code == 303


def test_create_without_password_sends_an_invitation_and_shows_the_link(admin, client, session,
                                                                        outbox):
    response = client.post("/manage/users/new", data={
        "email": "mia@portal.test", "name": "Mia", "role": "manager", "password": "",
    }, follow_redirects=True)
    page = text(response)
    assert len(outbox) == 1 and outbox[0]["To"] == "mia@portal.test"
    mail_body = mail_text(outbox[0])
    link = re.search(r"http://portal\.test/auth/invite/\S+", mail_body).group(0)
    assert "Invitation sent to mia@portal.test" in page
    assert link in page
    assert by_email(session, "mia@portal.test").password_hash is None
    assert "Invited" in text(client.get("/manage/users"))


@pytest.mark.parametrize(("data", "field_error"), [
    ({"email": "not-an-email", "role": "manager"}, "Enter a valid email address"),
    ({"email": "", "role": "manager"}, "Enter the email address."),
    ({"email": "p@portal.test", "role": "partner", "partner": ""}, "Pick the partner."),
    ({"email": "p@portal.test", "role": "partner", "partner": "NOPE"}, "Unknown partner code."),
    ({"email": "p@portal.test", "role": "manager", "partner": "D1"},
     "Leave empty for admins and managers."),
    ({"email": "p@portal.test", "role": "manager", "password": "short"},
     "Use 10 to 200 characters."),
    ({"email": "p@portal.test", "role": "manager", "password": "p@portal.test"},
     "Do not use your email address as the password."),
    ({"email": "p@portal.test", "role": "wizard"}, "Not a valid choice"),
])
def test_create_refuses_bad_input_and_saves_nothing(admin, client, session, make_partner,
                                                    outbox, data, field_error):
    make_partner("D1")
    session.commit()
    before = user_count(session)
    response = client.post("/manage/users/new", data={"name": "X", **data})
    assert response.status_code == 422
    page = text(response)
    assert "Please correct the fields marked below." in page
    assert field_error in page
    assert user_count(session) == before
    assert outbox == []


def test_create_refuses_a_duplicate_email_whatever_its_case(admin, client, session, make_user):
    make_user("manager", email="taken@portal.test")
    session.commit()
    before = user_count(session)
    response = client.post("/manage/users/new", data={
        "email": "TAKEN@portal.test", "role": "manager", "password": "a fine password"})
    assert response.status_code == 422
    assert "This email already has an account." in text(response)
    assert user_count(session) == before


# --- edit --------------------------------------------------------------------------------


def test_edit_changes_name_role_and_partner(admin, client, session, make_user, make_partner):
    first, second = make_partner("D100"), make_partner("D200")
    user = make_user("partner", partner=first)
    session.commit()
    form = text(client.get(f"/manage/users/{user.id}/edit"))
    assert 'value="D100"' in form and user.email in form

    response = client.post(f"/manage/users/{user.id}/edit", data={
        "name": "Renamed", "role": "partner", "partner": "D200", "partner_admin": "y"})
    assert response.status_code == 303
    session.refresh(user)
    assert (user.name, user.partner_id, user.partner_admin) == ("Renamed", second.id, True)

    # Promoting to manager drops the partner link and the partner-admin flag.
    response = client.post(f"/manage/users/{user.id}/edit", data={
        "name": "Renamed", "role": "manager", "partner": "", "partner_admin": "y"})
    assert response.status_code == 303
    session.refresh(user)
    assert (user.role, user.partner_id, user.partner_admin) == ("manager", None, False)


def test_edit_refuses_bad_input_and_changes_nothing(admin, client, session, make_user,
                                                    make_partner):
    user = make_user("partner", partner=make_partner("D300"))
    user.name = "Kept"
    session.commit()
    response = client.post(f"/manage/users/{user.id}/edit", data={
        "name": "Changed", "role": "partner", "partner": "MISSING"})
    assert response.status_code == 422
    assert "Unknown partner code." in text(response)
    session.refresh(user)
    assert user.name == "Kept" and user.partner.code == "D300"


def test_admin_cannot_change_their_own_role(admin, client, session):
    response = client.post(f"/manage/users/{admin.id}/edit", data={
        "name": "Me", "role": "manager", "partner": ""})
    assert response.status_code == 422
    assert "Ask another administrator to change your role." in text(response)
    session.refresh(admin)
    assert admin.role == "admin"


def test_unknown_user_is_404(admin, client):
    assert client.get("/manage/users/999999/edit").status_code == 404
    assert client.post("/manage/users/999999/deactivate").status_code == 404


# --- reset password ----------------------------------------------------------------------


def test_reset_password_ends_sessions_and_sends_a_link(app, admin, client, session, make_user,
                                                       outbox):
    user = make_user("manager")
    user_client = app.test_client()
    sign_in(user_client, user)
    token = user_client.post("/api/v1/tokens",
                             json={"email": user.email, "password": PASSWORD}).json["token"]
    assert user_client.get("/", follow_redirects=True).status_code == 200

    confirm = client.get(f"/manage/users/{user.id}/reset-password")
    assert confirm.status_code == 200
    assert "signed out everywhere" in text(confirm)
    assert outbox == []  # the confirmation page itself changes nothing

    response = client.post(f"/manage/users/{user.id}/reset-password", follow_redirects=True)
    page = text(response)
    assert len(outbox) == 1 and outbox[0]["To"] == user.email
    link = re.search(r"http://portal\.test/auth/reset/\S+",
                     mail_text(outbox[0])).group(0)
    assert link in page
    assert user_client.get("/").status_code == 302
    assert user_client.get("/api/v1/me",
                           headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # Until the link is used, the old password still works.
    assert sign_in(app.test_client(), user).status_code == 303


def test_reset_for_someone_never_signed_in_resends_the_invitation(admin, client, session,
                                                                  outbox):
    client.post("/manage/users/new", data={"email": "late@portal.test", "role": "manager"})
    first_link = re.search(r"/auth/invite/\S+",
                           mail_text(outbox[0])).group(0)
    user = by_email(session, "late@portal.test")
    response = client.post(f"/manage/users/{user.id}/reset-password", follow_redirects=True)
    assert "A new invitation was sent" in text(response)
    assert len(outbox) == 2 and "invited" in outbox[1]["Subject"]
    # Only the newest invitation works.
    assert client.get(first_link).status_code == 404


# --- deactivate / reactivate -------------------------------------------------------------


def test_deactivate_confirms_then_signs_out_everywhere(app, admin, client, session, make_user,
                                                       make_partner):
    user = make_user("partner", partner=make_partner())
    user_client = app.test_client()
    sign_in(user_client, user)
    token = user_client.post("/api/v1/tokens",
                             json={"email": user.email, "password": PASSWORD}).json["token"]
    version = user.session_version

    confirm = client.get(f"/manage/users/{user.id}/deactivate")
    assert confirm.status_code == 200
    assert f"Deactivate {user.email}?" in text(confirm)
    session.refresh(user)
    assert user.active  # showing the question changes nothing

    response = client.post(f"/manage/users/{user.id}/deactivate")
    assert response.status_code == 303
    session.refresh(user)
    assert not user.active and user.session_version == version + 1
    assert user_client.get("/").status_code == 302
    assert user_client.get("/api/v1/me",
                           headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "Deactivated" in text(client.get("/manage/users"))

    response = client.post(f"/manage/users/{user.id}/reactivate")
    assert response.status_code == 303
    session.refresh(user)
    assert user.active
    assert sign_in(user_client, user).status_code == 303


def test_admin_cannot_deactivate_themself(admin, client, session):
    response = client.post(f"/manage/users/{admin.id}/deactivate", follow_redirects=True)
    assert "You cannot deactivate your own account." in text(response)
    session.refresh(admin)
    assert admin.active
    assert client.get("/manage/users").status_code == 200


def test_deactivate_needs_the_csrf_token(app, admin, client, session, make_user):
    user = make_user("manager")
    session.commit()
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post(f"/manage/users/{user.id}/deactivate").status_code == 400
    session.refresh(user)
    assert user.active
    page = text(client.get(f"/manage/users/{user.id}/deactivate"))
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(f"/manage/users/{user.id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 303
    session.refresh(user)
    assert not user.active


def test_create_user_command_uses_the_same_rules(runner, session, make_partner):
    make_partner("D55")
    session.commit()
    result = runner.invoke(args=["create-user", "--email", "Cli@Portal.test", "--password",
                                 "long enough pw", "--role", "partner", "--partner", "D55"])
    assert result.exit_code == 0, result.output
    assert "created partner cli@portal.test for partner D55" in result.output
    assert by_email(session, "cli@portal.test").check_password("long enough pw")

    again = runner.invoke(args=["create-user", "--email", "cli@portal.test", "--password",
                                "long enough pw", "--role", "manager"])
    assert again.exit_code != 0
    assert "already has an account" in again.output
    short = runner.invoke(args=["create-user", "--email", "x@portal.test", "--password",
                                "short", "--role", "manager"])
    assert short.exit_code != 0
    assert "at least 10 characters" in short.output
