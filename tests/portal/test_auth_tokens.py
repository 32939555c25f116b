"""API tokens a person can see and revoke one by one; the database keeps only a hash."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from portal.core.models import ApiToken
from tests.conftest import PASSWORD


def new_token(client, user, label=""):
    response = client.post("/api/v1/tokens",
                           json={"email": user.email, "password": PASSWORD, "label": label})
    assert response.status_code == 201, response.json
    return response.json["token"]


def me(client, token):
    # buffered: the response is read and closed, as a real server does (the token's use
    # is written down once the response is done)
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"},
                      buffered=True)


def csrf_token_from(page: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_the_database_keeps_only_a_hash_of_each_token(client, make_user, session):
    user = make_user("manager")
    token = new_token(client, user, "CRM sync")
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in vars(rows[0]).values())
    assert token not in stored  # a copy of the table opens nothing
    assert rows[0].secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(rows[0].prefix) and len(rows[0].prefix) < len(token) / 3


def test_a_user_sees_their_tokens_and_revokes_one_which_stops_at_once(
        app, client, make_user, session):
    user = make_user("partner", partner=None)
    crm = new_token(client, user, "CRM sync")
    phone = new_token(client, user, "Field app")
    assert me(client, crm).status_code == 200
    session.commit()  # the reading requests below roll back what is not committed

    client.post("/auth/login", data={"email": user.email, "password": PASSWORD,
                                     "csrf_token": csrf_token_from(
                                         client.get("/auth/login").get_data(as_text=True))})
    page = client.get("/auth/account").get_data(as_text=True)
    assert "CRM sync" in page and "Field app" in page
    assert crm[:12] in page and phone[:12] in page
    assert crm not in page and phone not in page  # the secret is never shown again
    crm_row = session.scalars(select(ApiToken).where(ApiToken.label == "CRM sync")
                              .execution_options(populate_existing=True)).one()
    assert crm_row.last_used_at is not None  # written after the response, off the request
    row = re.search(r"<tr>(?:(?!</tr>).)*CRM sync(?:(?!</tr>).)*</tr>", page, re.S).group(0)
    assert "never" not in row

    revoke = f"/auth/account/tokens/{crm_row.id}/revoke"
    assert client.post(revoke).status_code == 400  # no CSRF token: refused
    assert me(client, crm).status_code == 200
    done = client.post(revoke, data={"csrf_token": csrf_token_from(page)})
    assert done.status_code == 303
    assert me(client, crm).status_code == 401
    assert me(client, phone).status_code == 200
    page = client.get("/auth/account").get_data(as_text=True)
    assert "CRM sync" not in page and "Field app" in page


def test_nobody_revokes_another_persons_token(app, client, make_user, session):
    owner, other = make_user("manager"), make_user("manager")
    token = new_token(client, owner)
    row = session.scalars(select(ApiToken).where(ApiToken.user_id == owner.id)).one()
    app.config["WTF_CSRF_ENABLED"] = False
    client.post("/auth/login", data={"email": other.email, "password": PASSWORD})
    assert client.post(f"/auth/account/tokens/{row.id}/revoke").status_code == 404
    assert me(client, token).status_code == 200


def test_signing_out_of_the_browser_leaves_api_tokens_working(app, client, make_user):
    user = make_user("manager")
    token = new_token(client, user)
    app.config["WTF_CSRF_ENABLED"] = False
    client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    client.post("/auth/logout")
    assert me(client, token).status_code == 200  # a program's token is revoked on its own
