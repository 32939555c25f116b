"""Public campaign forms (hosted and embedded), their spam defences, and a partner's own
capture page: what a prospect, a bot and a dealer see, and what is stored."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.capture.spam import sign_stamp
from portal.core.models import Campaign, Lead, LeadEvent, Source


@pytest.fixture
def campaign(session: Any) -> Campaign:
    row = Campaign(code="SPRING", name="Spring tractor days")
    session.add(row)
    session.commit()  # requests share the test's session; a GET rolls back what is not
    return row


@pytest.fixture
def dealer(make_partner: Any, session: Any) -> Any:
    partner = make_partner("D1", territories=["zip:50401"], product_lines=["TRC"],
                           name="Iowa Ag")
    session.commit()
    return partner


@pytest.fixture
def quick(app: Any) -> None:
    """People in these tests fill the form instantly; the time check has its own tests."""
    app.config["CAPTURE_MIN_FILL_SECONDS"] = 0


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" type="hidden" value="([^"]*)"', page) or re.search(
        rf'type="hidden" name="{name}" value="([^"]*)"', page) or re.search(
        rf'id="{name}" name="{name}" type="hidden" value="([^"]*)"', page)
    assert match, f"no hidden {name} field"
    return html.unescape(match.group(1))


def shown_form(client: Any, code: str = "SPRING") -> dict[str, str]:
    page = client.get(f"/f/{code}").get_data(as_text=True)
    return {"stamp": hidden(page, "stamp"), "token": hidden(page, "token")}


def inquiry(**overrides: Any) -> dict[str, Any]:
    data = {"first_name": "Jo", "last_name": "Farmer", "company": "Farmer Acres",
            "email": "jo@farmer.example", "phone": "", "postal_code": "50401",
            "product_line": "TRC", "timeline": "now", "budget": "approved",
            "role": "decision_maker", "interest": "quote", "comments": "Need a 100 hp tractor",
            "wants_literature": "y", "website": ""}
    data.update(overrides)
    return data


def lead_count(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(Lead))


def test_public_form_page_labels_every_field_and_shows_consent(
        client: Any, session: Any, campaign: Any, make_product_line: Any) -> None:
    make_product_line("TRC", name="Tractors")
    session.commit()
    response = client.get("/f/spring")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Spring tractor days" in page
    for label in ("First name", "Email", "ZIP code", "Product line", "When do you plan to buy?",
                  "Budget", "Your role", "What would help you most?",
                  "Send me literature about this product line"):
        assert label in page
    assert '<option value="TRC">Tractors</option>' in page
    assert "may contact you about your inquiry" in page
    assert page.index("may contact you") < page.index("Send my inquiry")
    assert "<script" not in page  # works without JavaScript
    assert "Set-Cookie" not in str(response.headers)  # no session for anonymous visitors


def test_unknown_or_inactive_campaign_is_404(client: Any, session: Any, campaign: Any) -> None:
    assert client.get("/f/NOPE").status_code == 404
    campaign.active = False
    session.commit()
    assert client.get("/f/SPRING").status_code == 404
    assert client.post("/f/SPRING", data=inquiry()).status_code == 404


def test_happy_path_creates_a_routed_lead_and_shows_thanks(client: Any, session: Any,
                                                           campaign: Any, dealer: Any,
                                                           quick: None) -> None:
    session.add(Source(code="WEB", name="Web form"))
    session.commit()
    response = client.post("/f/SPRING", data=inquiry(**shown_form(client)))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/f/SPRING/thanks")
    lead = session.scalars(select(Lead)).one()
    assert (lead.first_name, lead.email, lead.campaign.code, lead.source.code) == (
        "Jo", "jo@farmer.example", "SPRING", "WEB")
    assert lead.answers == {"timeline": "now", "budget": "approved",
                            "role": "decision_maker", "interest": "quote"}
    assert lead.wants_literature is True
    assert lead.status == "offered" and lead.assigned_partner.code == "D1"
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200
    assert "Thank you!" in thanks.get_data(as_text=True)


def test_double_click_makes_one_lead(client: Any, session: Any, campaign: Any, dealer: Any,
                                     quick: None) -> None:
    data = inquiry(**shown_form(client))
    assert client.post("/f/SPRING", data=data).status_code == 303
    assert client.post("/f/SPRING", data=data).status_code == 303
    assert lead_count(session) == 1
    events = session.scalars(select(LeadEvent.kind)).all()
    assert "inquiry" not in events  # not even recorded as a repeat inquiry


def test_honeypot_pretends_success_and_stores_nothing(client: Any, session: Any,
                                                      campaign: Any, quick: None) -> None:
    response = client.post("/f/SPRING",
                           data=inquiry(website="http://spam.example", **shown_form(client)))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/f/SPRING/thanks")
    assert lead_count(session) == 0


def test_expired_tampered_or_missing_stamp_is_refused(client: Any, session: Any,
                                                      campaign: Any, app: Any,
                                                      quick: None) -> None:
    with app.test_request_context():
        old = sign_stamp("SPRING", issued_at=time.time() - 2 * 86400)
        other = sign_stamp("OTHER", issued_at=time.time() - 60)
    token = shown_form(client)["token"]
    expired = client.post("/f/SPRING", data=inquiry(stamp=old, token=token))
    assert expired.status_code == 422
    assert "open for a long time" in expired.get_data(as_text=True)
    for stamp in (old[:-3] + "abc", other, ""):
        response = client.post("/f/SPRING", data=inquiry(stamp=stamp, token=token))
        assert response.status_code == 422
        assert "send the form again" in response.get_data(as_text=True)
    assert lead_count(session) == 0


def test_embedded_snippet_without_stamp_is_accepted(client: Any, session: Any,
                                                    campaign: Any, dealer: Any) -> None:
    response = client.post("/f/SPRING", data=inquiry(embed="1"))
    assert response.status_code == 303
    assert lead_count(session) == 1


def test_rate_limit_per_address_answers_429(client: Any, session: Any, campaign: Any,
                                            dealer: Any, quick: None) -> None:
    for n in range(5):
        response = client.post("/f/SPRING", data=inquiry(
            email=f"p{n}@farm.example", last_name=f"Farmer{n}", **shown_form(client)))
        assert response.status_code == 303
    blocked = client.post("/f/SPRING", data=inquiry(email="p9@farm.example",
                                                    **shown_form(client)))
    assert blocked.status_code == 429
    assert "Please wait a moment" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    assert lead_count(session) == 5
    # Another address is not affected.
    other = client.post("/f/SPRING", data=inquiry(email="p10@farm.example", last_name="Other",
                                                  **shown_form(client)),
                        environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 303
    assert lead_count(session) == 6


def test_per_field_errors_keep_what_was_typed(client: Any, session: Any, campaign: Any,
                                              quick: None) -> None:
    response = client.post("/f/SPRING", data=inquiry(
        email="not-an-email", postal_code="ABC", first_name="Jo", **shown_form(client)))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="email-error">Not a valid email address', page)
    assert re.search(r'id="postal_code-error">Enter a 5-digit ZIP code.', page)
    assert 'value="not-an-email"' in page and 'value="ABC"' in page
    assert lead_count(session) == 0


def test_missing_contact_details_are_asked_for(client: Any, session: Any, campaign: Any,
                                               quick: None) -> None:
    response = client.post("/f/SPRING", data=inquiry(email="", phone="", **shown_form(client)))
    assert response.status_code == 422
    assert "Give an email address or a phone number" in response.get_data(as_text=True)
    bad_phone = client.post("/f/SPRING", data=inquiry(email="", phone="12",
                                                      **shown_form(client)))
    assert "Not a valid phone number" in bad_phone.get_data(as_text=True)
    assert lead_count(session) == 0


def test_oversized_and_multiline_names_are_refused(client: Any, session: Any, campaign: Any,
                                                   quick: None) -> None:
    long = client.post("/f/SPRING", data=inquiry(last_name="x" * 81, **shown_form(client)))
    assert long.status_code == 422
    assert "Field cannot be longer than 80 characters." in long.get_data(as_text=True)
    crlf = client.post("/f/SPRING", data=inquiry(first_name="Jo\r\nBcc: x@evil.example",
                                                 **shown_form(client)))
    assert crlf.status_code == 422
    assert re.search(r'id="first_name-error">Must be a single line.', crlf.get_data(as_text=True))
    assert lead_count(session) == 0


def test_html_in_input_is_shown_escaped(client: Any, session: Any, campaign: Any,
                                        quick: None) -> None:
    response = client.post("/f/SPRING", data=inquiry(
        first_name="<script>alert(1)</script>", comments='<img src=x onerror="alert(2)">',
        email="bad", **shown_form(client)))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=" in page


def test_embed_page_shows_the_snippet_to_staff_only(client: Any, auth: Any, campaign: Any,
                                                    dealer: Any) -> None:
    assert client.get("/capture/campaigns/SPRING/embed").status_code == 302  # sign in first
    auth.login("partner", partner=dealer)
    assert client.get("/capture/campaigns/SPRING/embed").status_code == 403
    auth.logout()
    auth.login("manager")
    response = client.get("/capture/campaigns/SPRING/embed")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    # Shown as text to copy, so the markup arrives escaped inside the textarea.
    assert "&lt;form action=&#34;http://portal.test/f/SPRING&#34; method=&#34;post&#34;" in page
    assert "name=&#34;website&#34;" in page and "name=&#34;embed&#34; value=&#34;1&#34;" in page
    assert "http://portal.test/f/SPRING" in page
    assert client.get("/capture/campaigns/NOPE/embed").status_code == 404


def test_snippet_posts_a_lead_the_same_way(client: Any, auth: Any, session: Any,
                                           campaign: Any, dealer: Any) -> None:
    auth.login("admin")
    page = client.get("/capture/campaigns/SPRING/embed").get_data(as_text=True)
    snippet = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S).group(1))
    names = set(re.findall(r'name="([a-z_]+)"', snippet))
    assert names >= {"first_name", "email", "phone", "postal_code", "product_line", "timeline",
                     "budget", "role", "interest", "comments", "wants_literature", "website",
                     "embed"}
    auth.logout()
    response = client.post("/f/SPRING", data=inquiry(embed="1"))
    assert response.status_code == 303
    assert session.scalars(select(Lead)).one().assigned_partner.code == "D1"


def test_partner_captures_its_own_lead(client: Any, auth: Any, session: Any, dealer: Any,
                                       make_partner: Any) -> None:
    make_partner("D2", territories=["zip:50401"], product_lines=["TRC"])  # would win routing
    session.add(Source(code="SHOW", name="Trade show"))
    session.commit()
    seller = auth.login("partner", partner=dealer)
    form = client.get("/capture/new")
    assert form.status_code == 200
    asked = form.get_data(as_text=True)
    assert 'name="viewport"' in asked
    # It speaks to the dealer about the customer, not to the customer.
    assert "Their role" in asked and "Decides on the purchase" in asked
    assert "When do they plan to buy?" in asked
    for said_to_a_prospect in ("Your role", "I decide on the purchase",
                               "So the nearest dealer can help you", "Send me literature"):
        assert said_to_a_prospect not in asked
    response = client.post("/capture/new", data={
        "first_name": "Walk", "last_name": "In", "phone": "515-555-0142",
        "postal_code": "50401", "product_line": "TRC", "source": "SHOW",
        "timeline": "3_months", "token": "a" * 32})
    assert response.status_code == 303
    lead = session.scalars(select(Lead)).one()
    assert lead.owner_partner_id == dealer.id and lead.assigned_partner_id == dealer.id
    assert lead.status == "accepted" and lead.source.code == "SHOW"
    assert lead.assigned_user_id == seller.id  # the walk-in is one of the seller's leads
    captured = session.scalars(select(LeadEvent).where(LeadEvent.kind == "captured")).one()
    assert captured.data["self_sourced"] is True
    # Saved: on to the new lead, where its next step is recorded.
    assert response.headers["Location"].endswith(f"/leads/{lead.id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved Walk In: the lead is yours and marked accepted." in page
    assert "Record what happened" in page
    mine = client.get("/leads/?assignee=me&tab=contact").get_data(as_text=True)
    assert f"/leads/{lead.id}" in mine

    # The same customer met again at the show (a new form): the inquiry joins the lead.
    again = client.post("/capture/new", data={
        "first_name": "Walk", "last_name": "In", "phone": "(515) 555-0142",
        "postal_code": "50401", "product_line": "TRC", "timeline": "now", "token": "b" * 32})
    assert again.headers["Location"].endswith(f"/leads/{lead.id}")
    assert session.scalars(select(Lead)).one().inquiries == 2
    assert "Walk In is already one of your leads: this inquiry was added to it." in (
        client.get(again.headers["Location"]).get_data(as_text=True))


def test_partner_capture_errors_and_escaping(client: Any, auth: Any, session: Any,
                                             dealer: Any) -> None:
    auth.login("partner", partner=dealer)
    response = client.post("/capture/new", data={"first_name": "<b>Bold</b>", "email": "x@",
                                                  "token": "b" * 32})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Not a valid email address" in page and "&lt;b&gt;Bold&lt;/b&gt;" in page
    ok = client.post("/capture/new", data={"first_name": "<b>Bold</b>", "phone": "5155550142",
                                           "token": "c" * 32}, follow_redirects=True)
    text = ok.get_data(as_text=True)
    assert "Saved &lt;b&gt;Bold&lt;/b&gt;" in text and "<b>Bold</b>" not in text
    assert lead_count(session) == 1


def test_partner_capture_is_for_partner_users(client: Any, auth: Any) -> None:
    assert client.get("/capture/new").status_code == 302
    auth.login("manager")
    assert client.get("/capture/new").status_code == 403
