"""Literature fulfilment: the library, packs by email (real SMTP), retries, the sweeper,
print batches, download links, and bad input — read back as the prospect and staff see it."""

from __future__ import annotations

import io
import socket
import subprocess
import uuid
from datetime import timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import func, select

from portal.core.models import (
    Fulfilment,
    Lead,
    LeadEvent,
    LiteratureItem,
    LiteratureVersion,
    PrintBatch,
    utcnow,
)
from portal.fulfilment import jobs as fjobs
from portal.fulfilment import library, pdf, services
from tests.conftest import PASSWORD

HOT = {
    "first_name": "Dana", "last_name": "Miller", "company": "Miller Farms",
    "email": "dana@example.com", "phone": "(641) 555-0142", "postal_code": "50401",
    "address": "12 Elm Street", "city": "Mason City",
    "country": "US", "product_line": "TRC", "wants_literature": True,
    "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
}


# --- helpers -----------------------------------------------------------------------------


def brochure(title: str, pages: int) -> bytes:
    """A real PDF with ``pages`` pages, each saying which brochure and page it is."""
    from weasyprint import HTML

    body = "".join(f'<p style="page-break-after: always">{title} page {n}</p>'
                   for n in range(1, pages + 1))
    return HTML(string=f"<html><body>{body}</body></html>").write_pdf()  # type: ignore[no-any-return]


def pdf_text(data: bytes) -> str:
    """The PDF's text as poppler's pdftotext reads it."""
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                          check=True)
    return done.stdout.decode()


def attachment(message: Message) -> bytes | None:
    for part in message.walk():
        if part.get_content_type() == "application/pdf":
            return part.get_payload(decode=True)  # type: ignore[no-any-return]
    return None


def body(message: Message, kind: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{kind}":
            return part.get_payload(decode=True).decode()  # type: ignore[union-attr]
    raise AssertionError(f"no text/{kind} part")


def fetch(client: Any, url: str, *, post: bool = False) -> Any:
    """A file download, read and closed (send_file streams from an open file)."""
    response = client.post(url) if post else client.get(url)
    response.get_data()
    response.close()
    return response


def api_headers(client: Any, make_user: Any) -> dict[str, str]:
    user = make_user("manager")
    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.json['token']}"}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


@pytest.fixture(autouse=True)
def literature_dir(app: Any, tmp_path: Any) -> Any:
    path = tmp_path / "literature"
    app.config["LITERATURE_DIR"] = str(path)
    pdf.literature_cache.clear()
    yield path
    pdf.literature_cache.clear()


@pytest.fixture
def add_literature(session: Any, make_product_line: Any) -> Any:
    def add(line: str | None, title: str, pages: int = 2, position: int = 0) -> LiteratureItem:
        line_id = make_product_line(line).id if line else None
        item = library.save_item(session, None, title=title, product_line_id=line_id,
                                 kind="brochure", position=position, active=True)
        library.upload_version(session, item, data=brochure(title, pages),
                               filename=f"{title}.pdf", user=None, activate=True)
        return item

    return add


@pytest.fixture
def dealer(make_partner: Any) -> Any:
    return make_partner("D-IA", name="Prairie Tractor & Supply", territories=["zip:504*"],
                        phone="+1 641 555 0100", email="sales@prairie.test",
                        address="400 Main St")


def fulfilment_of(session: Any, lead_id: Any) -> Fulfilment:
    session.expire_all()
    if isinstance(lead_id, str):
        lead_id = uuid.UUID(lead_id)
    return session.scalars(select(Fulfilment).where(Fulfilment.lead_id == lead_id)).one()


# --- the whole path ----------------------------------------------------------------------


def test_captured_lead_gets_a_personal_pack_by_email(
        client, session, make_user, dealer, add_literature, outbox):
    for n, title in enumerate(("Tractor Overview", "Loader Specs", "Financing Guide")):
        add_literature("TRC", title, pages=10, position=n)
    session.commit()

    response = client.post("/api/v1/leads", json=HOT, headers=api_headers(client, make_user))
    assert response.status_code == 201, response.json
    assert response.json["assigned_partner"] == "D-IA"

    assert len(outbox) == 1
    message = outbox[0]
    assert message["To"] == "dana@example.com"
    assert message["Reply-To"] == "sales@prairie.test"  # a reply reaches the dealer
    assert "information from" in message["Subject"]
    assert "Prairie Tractor & Supply" in body(message, "plain")
    assert "Prairie Tractor &amp; Supply" in body(message, "html")
    # Only offered so far: the letter promises a dealer's call, not this dealer's.
    plain = " ".join(body(message, "plain").split())
    assert "or another dealer near you should they be unable to" in plain
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None  # mail clients sort by it
    pack = attachment(message)
    assert pack is not None
    assert len(PdfReader(io.BytesIO(pack)).pages) == 31  # cover letter + 3 × 10 pages
    text = pdf_text(pack)
    for expected in ("Dana Miller", "Miller Farms", "Prairie Tractor & Supply", "400 Main St",
                     "(641) 555-0100", "sales@prairie.test", "What happens next",
                     "Tractor Overview page 10", "Loader Specs page 1", "Financing Guide page 7"):
        assert expected in text, expected
    assert text.index("Tractor Overview page 1") < text.index("Financing Guide page 1")

    row = fulfilment_of(session, response.json["id"])
    assert (row.status, row.delivery, row.channel, row.attempts) == ("sent", "attachment",
                                                                     "email", 1)
    assert row.partner_id == dealer.id and row.page_count == 31
    assert [part["title"] for part in row.contents] == ["Tractor Overview", "Loader Specs",
                                                        "Financing Guide"]
    kinds = session.scalars(select(LeadEvent.kind).where(LeadEvent.lead_id == row.lead_id)
                            .order_by(LeadEvent.seq)).all()
    assert kinds[-1] == "literature_sent"


def test_a_lead_sent_without_its_town_gets_it_from_the_zip_in_its_letter(
        client, session, make_user, dealer, add_literature, outbox):
    add_literature("TRC", "Tractor Overview", pages=1)
    session.commit()
    inquiry = {**HOT, "city": "", "address": "12 Elm Street"}
    response = client.post("/api/v1/leads", json=inquiry,
                           headers=api_headers(client, make_user))
    assert response.status_code == 201, response.json
    lead = session.get(Lead, uuid.UUID(response.json["id"]))
    assert lead.city == "Mason City"
    text = pdf_text(attachment(outbox[0]))
    assert "Mason City, IA 50401" in text
    assert "Tractor Overview (1 page)" in text


def test_the_library_counts_pages_in_words(client, session, auth, add_literature):
    add_literature("TRC", "One-pager", pages=1)
    add_literature("TRC", "Spec sheets", pages=12, position=1)
    session.commit()
    auth.login("admin")
    page = client.get("/fulfilment/literature").get_data(as_text=True)
    assert "v1 &middot; 1 page<" in page and "12 pages" in page
    assert "1 pages" not in page


def test_lead_page_fragment_shows_what_was_sent(client, session, auth, make_user, dealer,
                                                add_literature, outbox):
    add_literature(None, "Company Profile")  # general literature: in every pack, last
    add_literature("TRC", "Tractor Overview", position=5)
    session.commit()
    lead_id = client.post("/api/v1/leads", json=HOT,
                          headers=api_headers(client, make_user)).json["id"]
    auth.login("manager")
    page = client.get(f"/fulfilment/leads/{lead_id}").get_data(as_text=True)
    assert "Sent" in page and "by email as an attachment to dana@example.com" in page
    assert "names Prairie Tractor &amp; Supply" in page
    lead = session.get(Lead, uuid.UUID(lead_id))
    assert [f.status for f in services.fulfilments_for(session, lead)] == ["sent"]
    text = pdf_text(attachment(outbox[0]) or b"")
    assert text.index("Tractor Overview page 1") < text.index("Company Profile page 1")
    listing = client.get("/fulfilment/?status=sent").get_data(as_text=True)
    assert "Sent (1)" in listing and lead.name in listing and "dana@example.com" in listing


def test_unassigned_lead_names_the_manufacturer(client, session, make_user, add_literature,
                                                app, outbox):
    add_literature("TRC", "Tractor Overview")
    app.config.update(MANUFACTURER_PHONE="+1 800 555 0199")
    session.commit()
    response = client.post("/api/v1/leads", json=HOT, headers=api_headers(client, make_user))
    assert response.json["assigned_partner"] is None
    text = pdf_text(attachment(outbox[0]) or b"")
    assert app.config["MANUFACTURER_NAME"] in text and "(800) 555-0199" in text
    assert "finding the dealer nearest you" in text


def test_html_in_a_name_is_text_and_crlf_is_refused(client, session, make_user, dealer,
                                                    add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    session.commit()
    headers = api_headers(client, make_user)
    crlf = client.post("/api/v1/leads", headers=headers,
                       json=dict(HOT, first_name="Eve\r\nBcc: all@example.com"))
    assert crlf.status_code == 422 and "first_name" in crlf.json["fields"]
    assert session.scalar(select(func.count()).select_from(Fulfilment)) == 0

    response = client.post("/api/v1/leads", headers=headers,
                           json=dict(HOT, first_name="<b>Zoë</b>", last_name="O'Brien & Co"))
    assert response.status_code == 201
    assert len(outbox) == 1
    html = body(outbox[0], "html")
    assert "&lt;b&gt;Zoë&lt;/b&gt;" in html and "<b>Zoë" not in html
    assert "<b>Zoë</b> O'Brien & Co" in pdf_text(attachment(outbox[0]) or b"")


def test_no_pack_for_disqualified_leads_or_repeat_inquiries(client, session, make_user, dealer,
                                                           add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    session.commit()
    headers = api_headers(client, make_user)
    assert client.post("/api/v1/leads", json=HOT, headers=headers).status_code == 201
    repeat = client.post("/api/v1/leads", json=HOT, headers=headers)
    assert repeat.status_code == 200  # joined the first lead
    not_wanted = client.post("/api/v1/leads", headers=headers,
                             json=dict(HOT, email="other@example.com", phone="",
                                       first_name="Ann", wants_literature=False))
    assert not_wanted.status_code == 201
    assert session.scalar(select(func.count()).select_from(Fulfilment)) == 1
    assert len(outbox) == 1


# --- failure, retry, the sweeper ---------------------------------------------------------


def test_smtp_down_retries_with_backoff_then_fails_and_a_manager_retries(
        client, session, app, auth, make_user, dealer, add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    session.commit()
    good_port = app.config["MAIL_PORT"]
    # Three tries: 1 + 2 minutes of waiting is the whole give-up time here.
    app.config.update(MAIL_PORT=closed_port(), MAIL_GIVE_UP_HOURS=3 / 60, MAIL_RETRY_SECONDS=60)
    response = client.post("/api/v1/leads", json=HOT, headers=api_headers(client, make_user))
    assert response.status_code == 201  # the capture stands although mail is down

    row = fulfilment_of(session, response.json["id"])
    assert (row.status, row.attempts, row.error_code) == ("pending", 1, "smtp")
    assert "Mail server" in row.last_error
    first_wait = row.next_attempt_at - utcnow()
    assert timedelta(seconds=50) < first_wait <= timedelta(seconds=60)

    assert fjobs.sweep(now=utcnow())["interrupted"] == 0  # not due yet: nothing tried
    assert fulfilment_of(session, row.lead_id).attempts == 1

    fjobs.sweep(now=row.next_attempt_at)
    row = fulfilment_of(session, row.lead_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert row.next_attempt_at - utcnow() > timedelta(seconds=100)  # doubled

    fjobs.sweep(now=row.next_attempt_at)
    row = fulfilment_of(session, row.lead_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error.startswith("Gave up after 3 tries")
    assert outbox == []

    auth.login("manager")
    page = client.get("/fulfilment/?status=failed").get_data(as_text=True)
    assert "Gave up after 3 tries" in page and "Retry" in page and "Failed (1)" in page

    app.config["MAIL_PORT"] = good_port
    response = client.post(f"/fulfilment/{row.id}/retry")
    assert response.status_code == 303
    assert len(outbox) == 1
    row = fulfilment_of(session, row.lead_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, "")
    again = client.post(f"/fulfilment/{row.id}/retry", follow_redirects=True)
    assert "Only failed packs can be retried" in again.get_data(as_text=True)
    assert len(outbox) == 1


def test_sweeper_sends_what_a_lost_nudge_left_pending(session, make_lead, dealer,
                                                      add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    lead = make_lead(wants_literature=True)
    row = services.request_pack(session, lead)
    session.info.pop("portal.core.jobs.after_commit")  # the queue never heard of it
    session.commit()
    assert outbox == [] and fulfilment_of(session, lead.id).status == "pending"

    assert fjobs.sweep()["sent"] == 1
    assert len(outbox) == 1 and fulfilment_of(session, lead.id).status == "sent"
    assert fjobs.sweep() == {"interrupted": 0}  # nothing left to do
    assert services.request_pack(session, lead).id == row.id  # same request, same row


def test_a_pack_is_never_sent_twice(session, make_lead, dealer, add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    lead = make_lead(wants_literature=True)
    row = services.request_pack(session, lead)
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()
    now = utcnow()
    assert services.claim(session, row.id, now) is True
    assert services.claim(session, row.id, now) is False  # a second worker gets nothing
    session.rollback()
    assert fjobs.process_fulfilment(row.id) == "sent"
    assert fjobs.process_fulfilment(row.id) == "skipped"
    assert fjobs.sweep()["interrupted"] == 0
    assert len(outbox) == 1


def test_a_pack_stuck_mid_send_goes_again_by_itself_with_its_message_id(
        session, make_lead, dealer, add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    lead = make_lead(wants_literature=True)
    row = services.request_pack(session, lead)
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()
    assert services.claim(session, row.id, utcnow())
    session.commit()  # the worker died here
    assert fjobs.sweep()["interrupted"] == 0  # still within the sending time limit
    assert outbox == []
    # At least once: had the first copy reached the server before the crash, this one is
    # recognisably the same email.
    outcome = fjobs.sweep(now=utcnow() + timedelta(hours=1))
    assert outcome["interrupted"] == 1 and outcome["sent"] == 1
    row = fulfilment_of(session, lead.id)
    assert row.status == "sent" and row.attempts == 2
    assert len(outbox) == 1
    assert outbox[0]["Message-ID"] == f"<literature-pack-{row.id}@portal.localhost>"


def test_product_line_without_literature_waits_then_goes_when_literature_is_added(
        client, session, auth, make_user, dealer, outbox):
    headers = api_headers(client, make_user)
    response = client.post("/api/v1/leads", json=HOT, headers=headers)
    assert response.status_code == 201
    row = fulfilment_of(session, response.json["id"])
    assert (row.status, row.error_code) == ("failed", "no_literature")
    assert "No active literature for product line TRC" in row.last_error
    assert outbox == []

    auth.login("admin")
    page = client.get("/fulfilment/literature").get_data(as_text=True)
    assert "No literature in use for: TRC" in page
    form = client.get("/fulfilment/literature/new")
    assert form.status_code == 200 and "TRC — " in form.get_data(as_text=True)
    missing_title = client.post("/fulfilment/literature/new", data={
        "title": "", "product_line_id": "", "kind": "brochure", "position": "0"})
    assert missing_title.status_code == 422
    client.post("/fulfilment/literature/new", data={
        "title": "Tractor Overview", "product_line_id": str(dealer.product_lines[0].id),
        "kind": "brochure", "position": "0", "active": "y"})
    item = session.scalars(select(LiteratureItem)).one()
    response = client.post(f"/fulfilment/literature/{item.id}/upload", data={
        "file": (io.BytesIO(brochure("Tractor Overview", 3)), "overview.pdf"),
        "activate": "y"}, content_type="multipart/form-data")
    assert response.status_code == 303
    # The waiting pack went out once the upload committed.
    assert len(outbox) == 1 and "Tractor Overview page 3" in pdf_text(attachment(outbox[0]) or b"")
    assert fulfilment_of(session, row.lead_id).status == "sent"


# --- direct mail -------------------------------------------------------------------------


def test_printed_literature_goes_into_a_print_batch(client, session, auth, make_user, dealer,
                                                    add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    session.commit()
    headers = api_headers(client, make_user)
    by_post = dict(HOT, answers=dict(HOT["answers"], literature_format="print"))
    lead_id = client.post("/api/v1/leads", json=by_post, headers=headers).json["id"]
    no_email = dict(HOT, email="", first_name="Olaf", last_name="Berg", phone="641-555-0177",
                    address="9 Oak Road", postal_code="50402")
    other_id = client.post("/api/v1/leads", json=no_email, headers=headers).json["id"]
    nowhere = dict(HOT, email="", address="", first_name="Nils", last_name="Hope",
                   phone="641-555-0178")
    lost_id = client.post("/api/v1/leads", json=nowhere, headers=headers).json["id"]
    assert outbox == []
    assert fulfilment_of(session, lead_id).status == "pending"
    assert fulfilment_of(session, lead_id).channel == "print"
    assert fulfilment_of(session, other_id).channel == "print"
    assert fulfilment_of(session, lost_id).error_code == "no_address"

    auth.login("manager")
    assert "Make a batch now" in client.get("/fulfilment/print-batches").get_data(as_text=True)
    assert client.post("/fulfilment/print-batches").status_code == 303
    batch = session.scalars(select(PrintBatch)).one()
    assert batch.count == 2
    assert fulfilment_of(session, lead_id).status == "batched"

    page = client.get(f"/fulfilment/print-batches/{batch.id}").get_data(as_text=True)
    assert "Dana Miller" in page and "Olaf Berg" in page and "Tractor Overview" in page
    letters = fetch(client, f"/fulfilment/print-batches/{batch.id}/letters.pdf")
    assert letters.status_code == 200 and letters.mimetype == "application/pdf"
    text = pdf_text(letters.data)
    assert "Dana Miller" in text and "Olaf Berg" in text and "Prairie Tractor & Supply" in text
    assert "Tractor Overview (2 pages)" in text
    assert len(PdfReader(io.BytesIO(letters.data)).pages) == 2
    labels = pdf_text(fetch(client, f"/fulfilment/print-batches/{batch.id}/labels.pdf").data)
    assert "12 Elm Street" in labels and "Mason City, IA 50402" in labels
    assert fulfilment_of(session, lead_id).status == "batched"  # a download changes nothing

    refused = client.post(f"/fulfilment/print-batches/{batch.id}/confirm", data={})
    assert refused.status_code == 422
    assert "Tick the box" in refused.get_data(as_text=True)
    done = client.post(f"/fulfilment/print-batches/{batch.id}/confirm", data={"printed": "y"})
    assert done.status_code == 303
    row = fulfilment_of(session, lead_id)
    assert (row.status, row.delivery) == ("printed", "mail") and row.printed_at is not None
    assert "by mail, printed" in client.get(f"/fulfilment/leads/{lead_id}").get_data(
        as_text=True)
    assert client.post("/fulfilment/print-batches").status_code == 303
    assert session.scalar(select(func.count()).select_from(PrintBatch)) == 1  # none waiting


# --- large packs: a signed link ----------------------------------------------------------


def test_a_large_pack_is_sent_as_a_signed_link_counted_on_download(
        client, session, app, make_user, dealer, add_literature, outbox):
    add_literature("TRC", "Tractor Overview", pages=4)
    session.commit()
    app.config["PACK_ATTACH_MAX_BYTES"] = 1000
    lead_id = client.post("/api/v1/leads", json=HOT,
                          headers=api_headers(client, make_user)).json["id"]
    message = outbox[0]
    assert attachment(message) is None
    text = body(message, "plain")
    link = next(word for word in text.split() if "/fulfilment/pack/" in word)
    assert link.startswith("http://portal.test/fulfilment/pack/")
    path = link.removeprefix("http://portal.test")

    landing = client.get(path)
    assert landing.status_code == 200 and "Download the PDF" in landing.get_data(as_text=True)
    assert fulfilment_of(session, lead_id).downloads == 0  # GET (or a mail scanner) counts nothing
    app.config["WTF_CSRF_ENABLED"] = False
    download = fetch(client, path, post=True)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert "Tractor Overview page 4" in pdf_text(download.data)
    row = fulfilment_of(session, lead_id)
    assert (row.delivery, row.downloads) == ("link", 1) and row.downloaded_at is not None

    assert client.get(path[:-3] + "xyz").status_code == 404
    app.config["PACK_LINK_MAX_AGE_DAYS"] = -1
    expired = client.get(path)
    assert expired.status_code == 404 and "does not work any more" in expired.get_data(
        as_text=True)


# --- the library and bad uploads ---------------------------------------------------------


@pytest.fixture
def item(session: Any, make_product_line: Any) -> LiteratureItem:
    return library.save_item(session, None, title="Loader Specs",
                             product_line_id=make_product_line("TRC").id, kind="spec_sheet",
                             position=0, active=True)


def _upload(client: Any, item: LiteratureItem, data: bytes, name: str = "specs.pdf") -> Any:
    return client.post(f"/fulfilment/literature/{item.id}/upload",
                       data={"file": (io.BytesIO(data), name), "activate": "y"},
                       content_type="multipart/form-data")


def _encrypted(data: bytes) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: b"PK\x03\x04 this is a zip file renamed", "That is not a PDF file"),
    (lambda: b"%PDF-1.7\n" + b"\x00garbage" * 200, "The PDF is damaged"),
    (lambda: _encrypted(brochure("Secret", 1)), "password-protected or encrypted"),
    (lambda: brochure("Long", 4), "The PDF has 4 pages; at most 3"),
    (lambda: b"", "The file is empty"),
])
def test_bad_uploads_are_refused_with_a_clear_message_and_nothing_kept(
        client, session, auth, app, item, literature_dir, make, message):
    app.config["LITERATURE_MAX_PAGES"] = 3
    auth.login("admin")
    response = _upload(client, item, make())
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(LiteratureVersion)) == 0
    assert not literature_dir.exists() or list(literature_dir.iterdir()) == []


def test_an_upload_over_the_size_limit_is_refused(client, session, auth, app, item,
                                                  literature_dir):
    auth.login("admin")
    app.config["LITERATURE_MAX_BYTES"] = 5000
    response = _upload(client, item, brochure("Big", 3) + b"\n%" + b"x" * 6000)
    assert response.status_code == 422
    assert "the limit is" in response.get_data(as_text=True)
    # 200 MB: refused from its Content-Length before anything is read or stored.
    huge = client.post(f"/fulfilment/literature/{item.id}/upload", data=b"x" * 10,
                       content_type="multipart/form-data; boundary=x",
                       environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)})
    assert huge.status_code == 413
    assert "larger than the 20 MB the portal accepts" in huge.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(LiteratureVersion)) == 0


def test_versions_one_active_preview_and_written_literature(client, session, auth, item):
    auth.login("admin")
    assert _upload(client, item, brochure("Loader Specs v1", 2)).status_code == 303
    written = client.post(f"/fulfilment/literature/{item.id}/write", data={
        "body": "# Loader <script>alert(1)</script>\nLifts 2,000 lb.\n\n- Quick hitch\n"
                "- Two-year warranty\n<img src=\"file:///etc/passwd\">",
        "activate": "y"})
    assert written.status_code == 303
    versions = session.scalars(select(LiteratureVersion).order_by(LiteratureVersion.number)
                               ).all()
    assert [(v.number, v.source, v.is_active) for v in versions] == [
        (1, "pdf", False), (2, "html", True)]
    page = client.get(f"/fulfilment/literature/{item.id}").get_data(as_text=True)
    assert "Use this version" in page and "In use" in page and "specs.pdf" in page

    preview = fetch(client, f"/fulfilment/literature/{item.id}/versions/{versions[1].id}/preview")
    assert preview.status_code == 200 and preview.mimetype == "application/pdf"
    text = pdf_text(preview.data)
    assert "Loader <script>alert(1)</script>" in text  # shown as text, never run as markup
    assert "Quick hitch" in text and "Lifts 2,000 lb." in text

    activate = client.post(
        f"/fulfilment/literature/{item.id}/versions/{versions[0].id}/activate")
    assert activate.status_code == 303
    session.expire_all()
    active = session.scalars(select(LiteratureVersion.number).where(
        LiteratureVersion.item_id == item.id, LiteratureVersion.is_active.is_(True))).all()
    assert active == [1]


def test_library_is_for_admins_and_packs_for_staff(client, auth, make_partner):
    auth.login("partner", partner=make_partner())
    assert client.get("/fulfilment/").status_code == 403
    auth.logout()
    auth.login("manager")
    assert client.get("/fulfilment/").status_code == 200
    assert client.get("/fulfilment/literature").status_code == 403
    assert client.get("/fulfilment/?status=bogus").status_code == 404


# --- rendering safety --------------------------------------------------------------------


def test_url_fetcher_serves_static_files_only(app):
    fetcher = pdf.make_url_fetcher(app.static_folder)
    served = fetcher(pdf.BASE_URL + "static/css/portal.css")
    assert served.content_type == "text/css" and b"--brand" in served.read()
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/", "https://example.com/x.png",
                pdf.BASE_URL + "static/../portal/config.py", pdf.BASE_URL + "admin"):
        with pytest.raises(ValueError):
            fetcher(url)


def test_rendering_is_stopped_at_its_time_limit_and_the_next_render_works(app):
    slow = "<table>" + "<tr><td>cell</td></tr>" * 20000 + "</table>"
    with pytest.raises(pdf.RenderError, match="longer than"):
        pdf.render_pdf(slow, static_dir=app.static_folder, timeout=0.2)
    fine = pdf.render_pdf("<p>still here</p>", static_dir=app.static_folder, timeout=60)
    assert "still here" in pdf_text(fine)


# --- reports -----------------------------------------------------------------------------


def test_time_to_fulfil_per_channel(session, make_lead):
    now = utcnow()
    for n, minutes in enumerate((10, 20, 30, 600)):
        lead = make_lead(email=f"t{n}@example.com")
        row = services.request_pack(session, lead, now=now - timedelta(hours=12))
        row.status, row.sent_at = "sent", row.requested_at + timedelta(minutes=minutes)
    session.info.pop("portal.core.jobs.after_commit", None)
    session.flush()
    email, printed = services.time_to_fulfil(session, now - timedelta(days=1), now)
    assert (email.channel, email.count) == ("email", 4)
    assert email.median_hours == pytest.approx(25 / 60)
    assert email.p95_hours == pytest.approx(10)
    assert printed.count == 0 and printed.median_hours is None
