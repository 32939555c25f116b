"""Inviting a colleague never tells a partner who else has an account on the portal."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.core.models import User
from tests.conftest import PASSWORD


def _text(response) -> str:
    return response.get_data(as_text=True)


def _row(page: str, email: str) -> str:
    """The users table's row of ``email``, with the person's own details blanked."""
    match = re.search(r"<tr>(?:(?!</tr>).)*" + re.escape(email) + r"(?:(?!</tr>).)*</tr>",
                      page, re.S)
    assert match, f"{email} is not listed"
    return match.group(0).replace(email, "EMAIL")


def test_inviting_another_partners_user_answers_like_any_invitation(
        client, auth, session, make_partner, make_user, outbox):
    mine, theirs = make_partner("D1", name="North Iowa Implement"), make_partner("D2")
    rival_user = make_user("partner", partner=theirs, email="sam@rival.test")
    staff = make_user("manager", email="pat@manufacturer.test")
    auth.login("partner", partner=mine, partner_admin=True)

    answers = {}
    for email in ("nia@newhire.test", "Sam@Rival.test", "pat@manufacturer.test"):
        response = client.post("/leads/settings/invite", data={"email": email, "name": "Kim"},
                               follow_redirects=True)
        answers[email.lower()] = response.status_code, re.findall(
            r'<p class="flash[^"]*">([^<]*)</p>', _text(response).replace(email.lower(),
                                                                             "EMAIL"))
    assert len(set(map(repr, answers.values()))) == 1, answers  # one answer for all three
    assert answers["nia@newhire.test"] == (200, ["Invitation sent to EMAIL."])

    page = _text(client.get("/leads/settings"))
    rows = {email: _row(page, email) for email in answers}
    assert len(set(rows.values())) == 1, rows  # each listed alike, as invited
    assert "Invited" in rows["nia@newhire.test"]

    # Asked again: the same answer whichever it was.
    again = {email: client.post("/leads/settings/invite", data={"email": email})
             for email in answers}
    assert {r.status_code for r in again.values()} == {422}
    errors = {re.sub(r"\S+@\S+", "EMAIL", " ".join(re.findall(
        r'<p class="error[^"]*"[^>]*>([^<]*)</p>', _text(r)))) for r in again.values()}
    assert errors == {"Please correct the fields marked below. "
                      "This email already has an account with you."}, errors

    # Nothing changed for the accounts that exist; their holders are told, harmlessly.
    session.refresh(rival_user)
    session.refresh(staff)
    assert rival_user.partner_id == theirs.id and rival_user.check_password(PASSWORD)
    assert staff.partner_id is None and staff.role == "manager"
    assert session.scalars(select(User).where(User.email == "nia@newhire.test")).one()
    by_recipient = {m["To"]: m for m in outbox}
    assert "/auth/invite/" in str(by_recipient["nia@newhire.test"])
    for email in ("sam@rival.test", "pat@manufacturer.test"):
        notice = by_recipient[email].get_payload(decode=True) or b""
        text = notice.decode() if notice else str(by_recipient[email])
        assert "/auth/invite/" not in text and "/auth/reset/" not in text
        assert "North Iowa Implement" in text and "nothing has changed" in text
