"""The public campaign form: errors next to each field on an empty send, a browser's
autofill that is quicker than the spam timer, and each campaign's own logo, colour and
wording (edited by staff, applied without inline style or script)."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from portal.capture.spam import CONFIRM, sign_stamp
from portal.core.models import Campaign, Lead
from tests.portal.test_capture_forms import hidden, inquiry, shown_form


@pytest.fixture
def campaign(session: Any) -> Campaign:
    row = Campaign(code="SPRING", name="Spring tractor days")
    session.add(row)
    session.commit()
    return row


@pytest.fixture
def dealer(make_partner: Any, session: Any) -> Any:
    partner = make_partner("D1", territories=["zip:50401"], product_lines=["TRC"])
    session.commit()
    return partner


def lead_count(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(Lead)) or 0


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (120, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (46, 125, 50)).save(buffer, kind)
    return buffer.getvalue()


def field_error(page: str, name: str) -> str | None:
    match = re.search(rf'id="{name}-error">([^<]*)<', page)
    return match.group(1) if match else None


# --- empty send, quick send ---------------------------------------------------------------


@pytest.mark.parametrize("seconds_taken", [1, 60])
def test_an_empty_send_says_next_to_each_field_what_it_lacks(client: Any, session: Any,
                                                             campaign: Any, app: Any,
                                                             seconds_taken: int) -> None:
    """However quick, an empty form is answered field by field, nothing stored."""
    with app.test_request_context():
        stamp = sign_stamp("SPRING", issued_at=time.time() - seconds_taken)
    response = client.post("/f/SPRING", data={"stamp": stamp, "token": "a" * 32})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "first_name") == "Enter your first name."
    assert field_error(page, "last_name") == "Enter your last name."
    assert field_error(page, "email") == ("Give an email address or a phone number so a "
                                          "dealer can reply.")
    assert field_error(page, "postal_code") == ("Enter your ZIP code, so the nearest dealer "
                                                "can help you.")
    assert field_error(page, "product_line") == ("Choose the product line you are "
                                                 "interested in.")
    assert "That was quick" not in page and CONFIRM not in page
    assert lead_count(session) == 0


def test_required_fields_are_marked_on_the_form(client: Any, campaign: Any) -> None:
    page = client.get("/f/SPRING").get_data(as_text=True)
    for name in ("first_name", "last_name", "postal_code", "product_line"):
        assert re.search(rf'<label for="{name}">[^<]*</label> <span class="req"', page), name


def test_autofill_in_two_seconds_is_confirmed_with_one_press_and_kept(
        client: Any, session: Any, campaign: Any, dealer: Any) -> None:
    """A browser that fills the form at once: asked to confirm, the answers kept, and the
    second press (however quick) makes the lead."""
    first = client.post("/f/SPRING", data=inquiry(**shown_form(client)))
    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "Almost done: please check your details below and press" in page
    assert 'value="jo@farmer.example"' in page and "Need a 100 hp tractor" in page
    assert lead_count(session) == 0
    again = client.post("/f/SPRING", data=inquiry(stamp=hidden(page, "stamp"),
                                                  token=hidden(page, "token")))
    assert again.status_code == 303
    assert again.headers["Location"].endswith("/f/SPRING/thanks")
    lead = session.scalars(select(Lead)).one()
    assert lead.email == "jo@farmer.example" and lead.assigned_partner.code == "D1"


def test_a_quick_send_with_wrong_answers_shows_them_not_a_confirmation(
        client: Any, session: Any, campaign: Any) -> None:
    response = client.post("/f/SPRING", data=inquiry(postal_code="ABC", **shown_form(client)))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "postal_code") == "Enter a 5-digit ZIP code."
    assert CONFIRM not in page
    assert lead_count(session) == 0


def test_a_confirmation_is_bound_to_its_campaign_and_ages(client: Any, session: Any,
                                                         campaign: Any, app: Any) -> None:
    """The confirmed stamp skips only the timer: another campaign's, or a day-old one, is
    refused; a bot filling the honeypot still stores nothing."""
    session.add(Campaign(code="OTHER", name="Other"))
    session.commit()
    with app.test_request_context():
        other = sign_stamp("OTHER", confirmed=True)
        old = sign_stamp("SPRING", issued_at=time.time() - 2 * 86400, confirmed=True)
        fresh = sign_stamp("SPRING", confirmed=True)
    for stamp in (other, old):
        response = client.post("/f/SPRING", data=inquiry(stamp=stamp, token="b" * 32))
        assert response.status_code == 422
        assert "send the form again" in response.get_data(as_text=True)
    trapped = client.post("/f/SPRING", data=inquiry(stamp=fresh, website="http://x.example"))
    assert trapped.status_code == 303
    assert lead_count(session) == 0


# --- the campaign's look ------------------------------------------------------------------


def brand_post(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form_heading": "Spring deals on compact tractors",
        "form_intro": "Tell us about your acres.\nA dealer calls within a day.",
        "thanks_text": "Thanks, neighbour!", "accent_color": "#2E7D32",
        "logo": (io.BytesIO(image_bytes()), "logo.png"),
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_staff_give_the_form_a_logo_colour_and_wording(client: Any, auth: Any, session: Any,
                                                       campaign: Any, dealer: Any) -> None:
    """Saved on the campaign's look page; the hosted form, its stylesheet, its logo and the
    thank-you page show them, with no inline style (the CSP refuses it)."""
    auth.login("manager")
    edit = client.get("/capture/campaigns/SPRING/brand")
    assert edit.status_code == 200
    assert 'enctype="multipart/form-data"' in edit.get_data(as_text=True)
    saved = client.post("/capture/campaigns/SPRING/brand", data=brand_post(),
                        content_type="multipart/form-data")
    assert saved.status_code == 303
    assert "Saved the look" in client.get(saved.headers["Location"]).get_data(as_text=True)
    auth.logout()

    page = client.get("/f/SPRING").get_data(as_text=True)
    assert "<h1>Spring deals on compact tractors</h1>" in page
    assert "Tell us about your acres.\nA dealer calls within a day." in page
    assert 'style="' not in page and "<script" not in page
    css_url = re.search(r'<link rel="stylesheet" href="(/f/SPRING/brand\.css\?v=\d+)"', page)
    logo_url = re.search(r'<img class="brand-logo" src="(/f/SPRING/logo\?v=\d+)"', page)
    assert css_url and logo_url and '<body class="public branded">' in page
    css = client.get(css_url.group(1))
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "--brand: #2e7d32; --brand-ink: #ffffff;" in css.get_data(as_text=True)
    logo = client.get(logo_url.group(1))
    assert logo.status_code == 200 and logo.mimetype == "image/png"
    assert logo.data == image_bytes()
    assert logo.headers["X-Content-Type-Options"] == "nosniff"

    client.post("/f/SPRING", data=inquiry(embed="1"))
    thanks = client.get("/f/SPRING/thanks").get_data(as_text=True)
    assert "Thanks, neighbour!" in thanks and "Spring deals on compact tractors" in thanks


def test_a_light_accent_gets_dark_ink(client: Any, auth: Any, campaign: Any) -> None:
    auth.login("admin")
    client.post("/capture/campaigns/SPRING/brand", data=brand_post(accent_color="#fc0",
                                                                   logo=None),
                content_type="multipart/form-data")
    css = client.get("/f/SPRING/brand.css").get_data(as_text=True)
    assert "--brand: #ffcc00; --brand-ink: #1c2430;" in css


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"accent_color": "green"}, "accent_color", "Enter a colour as # and six hex digits"),
    ({"accent_color": "#12345g"}, "accent_color", "Enter a colour as # and six hex digits"),
    ({"accent_color": "red;}"}, "accent_color", "Enter a colour as # and six hex digits"),
    ({"logo": (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
               "logo.svg")},
     "logo", "Upload the logo as a PNG, JPEG, GIF or WebP image."),
    ({"logo": (b"MZ not a picture at all", "logo.png")},
     "logo", "Upload the logo as a PNG, JPEG, GIF or WebP image."),
    ({"logo": (image_bytes()[:60], "cut.png")},
     "logo", "Upload the logo as a PNG, JPEG, GIF or WebP image."),
    ({"logo": (image_bytes("BMP", (400, 400)), "logo.bmp")},
     "logo", "at most 300 KB"),
    ({"logo": (image_bytes("PNG", (2500, 10)), "wide.png")},
     "logo", "upload one of at most 2000×2000"),
    ({"form_heading": "x" * 161}, "form_heading", "longer than 160"),
    ({"thanks_text": "bad \x00 byte"}, "thanks_text", "not text"),
])
def test_a_wrong_look_is_refused_on_its_field_and_nothing_changes(
        client: Any, auth: Any, session: Any, campaign: Any, overrides: dict[str, Any],
        field: str, message: str) -> None:
    auth.login("manager")
    if "logo" in overrides:  # a file to send, fresh for each database's run
        overrides = dict(overrides, logo=(io.BytesIO(overrides["logo"][0]),
                                          overrides["logo"][1]))
    response = client.post("/capture/campaigns/SPRING/brand", data=brand_post(**overrides),
                           content_type="multipart/form-data")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in (field_error(page, field) or ""), page
    session.expire_all()
    row = session.scalars(select(Campaign).where(Campaign.code == "SPRING")).one()
    assert (row.accent_color, row.form_heading, row.logo_type) == ("", "", "")
    assert client.get("/f/SPRING/logo").status_code == 404


def test_the_logo_can_be_removed(client: Any, auth: Any, campaign: Any) -> None:
    auth.login("manager")
    client.post("/capture/campaigns/SPRING/brand", data=brand_post(),
                content_type="multipart/form-data")
    assert client.get("/f/SPRING/logo").status_code == 200
    client.post("/capture/campaigns/SPRING/brand",
                data=brand_post(logo=None, remove_logo="y"), content_type="multipart/form-data")
    assert client.get("/f/SPRING/logo").status_code == 404
    assert "brand-logo" not in client.get("/f/SPRING").get_data(as_text=True)


def test_the_look_is_for_staff_and_linked_from_the_campaign(client: Any, auth: Any,
                                                           campaign: Any, dealer: Any) -> None:
    auth.login("partner", partner=dealer)
    assert client.get("/capture/campaigns/SPRING/brand").status_code == 403
    auth.logout()
    auth.login("manager")
    edit = client.get(f"/manage/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert 'href="/capture/campaigns/SPRING/brand"' in edit
    assert 'href="/capture/campaigns/SPRING/brand"' in client.get(
        "/capture/campaigns/SPRING/embed").get_data(as_text=True)
    assert client.get("/capture/campaigns/NOPE/brand").status_code == 404
