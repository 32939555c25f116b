"""CSV lead import, end to end through the pages: upload, map, background run, progress,
error report, re-import; and the files it refuses."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.core.models import Campaign, ImportStatus, Lead, LeadImport, Source


@pytest.fixture
def staff(app: Any, auth: Any, tmp_path: Path) -> Any:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    return auth.login("manager")


@pytest.fixture
def catalog(session: Any, make_partner: Any) -> dict[str, Any]:
    partner = make_partner("D1", territories=["zip:50401"], product_lines=["TRC"])
    show = Source(code="SHOW", name="Trade show")
    farm = Campaign(code="FARMSHOW", name="Farm show 2026")
    session.add_all([show, farm])
    session.commit()  # requests share the test's session; a GET rolls back what is not
    return {"partner": partner, "source": show, "campaign": farm}


TRADE_SHOW = (
    "First Name,Surname,E-mail,Phone,ZIP,Product,Timeline,Budget,Shoe size\r\n"
    "Ann,Able,ann@able.example,,50401,TRC,now,approved,42\r\n"
    "Fay,<script>alert(1)</script>,fay@fay.example,,50401,TRC,now,approved,38\r\n"
    "Bob,Baker,bob@baker.example,,50401,TRC,researching,unknown,44\r\n"
    "Cy,Cole,not-an-email,,50401,TRC,now,approved,40\r\n"
    'Di,"Dean\r\nBcc: x@evil.example",di@dean.example,,50401,TRC,now,approved,39\r\n'
    "Ed,Eve,ed@eve.example,,ABCDE,TRC,now,approved,41\r\n"
)


def upload(client: Any, text: str | bytes, name: str = "show.csv") -> Any:
    body = text.encode() if isinstance(text, str) else text
    return client.post("/capture/imports",
                       data={"file": (io.BytesIO(body), name)},
                       content_type="multipart/form-data")


def selected(page: str, column: int) -> str:
    block = re.search(rf'<select id="col_{column}".*?</select>', page, re.S)
    assert block, f"no select for column {column}"
    option = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected',
                       block.group(0))
    assert option, f"nothing selected for column {column}"
    return option.group(1) or option.group(2)


def mapping_data(page: str, columns: int, **overrides: str) -> dict[str, str]:
    data = {f"col_{i}": selected(page, i) for i in range(columns)}
    data.update(overrides)
    return data


def run(client: Any, text: str, columns: int, **overrides: str) -> Any:
    """Upload, keep the proposed mapping (with ``overrides``), start; the progress page."""
    response = upload(client, text)
    assert response.status_code == 303, response.get_data(as_text=True)
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    started = client.post(map_url, data=mapping_data(page, columns, **overrides))
    assert started.status_code == 303, started.get_data(as_text=True)
    return client.get(started.headers["Location"])


def report_rows(client: Any, import_id: int) -> list[list[str]]:
    response = client.get(f"/capture/imports/{import_id}/errors.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    response.close()
    return list(csv.reader(io.StringIO(text)))


def count(session: Any, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_import_end_to_end(client: Any, session: Any, staff: Any, catalog: Any) -> None:
    response = upload(client, TRADE_SHOW)
    assert response.status_code == 303
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    assert "6 data rows" in page
    assert "ann@able.example" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    assert [selected(page, i) for i in range(9)] == [
        "first_name", "last_name", "email", "phone", "postal_code", "product_line",
        "timeline", "budget", "answer"]
    started = client.post(map_url, data=mapping_data(
        page, 9, default_campaign=str(catalog["campaign"].id),
        default_source=str(catalog["source"].id)))
    assert started.status_code == 303
    progress = client.get(started.headers["Location"])
    text = progress.get_data(as_text=True)
    assert progress.status_code == 200
    assert "Status:</strong> done" in text
    assert "Processed 6 of 6 rows (100 %)" in text
    assert re.search(r'<span class="num">3</span><span class="label">created', text)
    assert re.search(r'<span class="num">3</span><span class="label">rejected', text)
    assert 'hx-trigger="every 1s"' not in text  # finished: polling stops

    leads = {lead.first_name: lead for lead in session.scalars(select(Lead))}
    assert set(leads) == {"Ann", "Bob", "Fay"}
    assert leads["Ann"].status == "offered" and leads["Ann"].assigned_partner.code == "D1"
    assert leads["Ann"].answers["Shoe size"] == "42"
    assert leads["Ann"].campaign.code == "FARMSHOW" and leads["Ann"].source.code == "SHOW"
    assert leads["Bob"].status == "nurture"
    assert leads["Fay"].last_name == "<script>alert(1)</script>"  # stored as given

    lead_import = session.scalars(select(LeadImport)).one()
    rows = report_rows(client, lead_import.id)
    assert rows[0] == ["line", "column", "message"]
    by_line = {int(row[0]): row for row in rows[1:]}
    assert sorted(by_line) == [5, 6, 8]  # a record's first line; Di's spans lines 6-7
    assert by_line[5][1] == "E-mail" and "Not a valid email address" in by_line[5][2]
    assert by_line[6][1] == "Surname" and by_line[6][2] == "Must be a single line."
    assert by_line[8][1] == "ZIP" and by_line[8][2] == "Enter a 5-digit ZIP code."
    assert "Download the error report" in text


def test_reimporting_the_same_file_creates_no_duplicates(client: Any, app: Any, session: Any,
                                                         staff: Any, catalog: Any) -> None:
    app.config["IMPORT_BATCH_ROWS"] = 2  # several commits along the way
    run(client, TRADE_SHOW, 9)
    assert count(session, Lead) == 3
    events_before = session.scalar(select(func.sum(Lead.inquiries)))
    text = run(client, TRADE_SHOW, 9).get_data(as_text=True)
    assert re.search(r'<span class="num">0</span><span class="label">created', text)
    assert re.search(r'<span class="num">3</span><span class="label">duplicates', text)
    assert count(session, Lead) == 3
    assert session.scalar(select(func.sum(Lead.inquiries))) == events_before


def test_same_person_in_another_list_is_attached(client: Any, session: Any, staff: Any,
                                                 catalog: Any) -> None:
    run(client, "email,first_name,postal_code,external_id\r\n"
                "ann@able.example,Ann,50401,CRM-1\r\n", 4)
    text = run(client, "Email,Name,Zip,Id\r\nANN@able.example,Annie,50401,\r\n"
                       "x@y.example,Xavier,50401,CRM-1\r\n", 4,
               col_1="first_name").get_data(as_text=True)
    assert re.search(r'<span class="num">2</span><span class="label">duplicates', text)
    lead = session.scalars(select(Lead)).one()
    assert lead.inquiries == 3


def test_rows_with_a_phone_import_without_an_email_column(client: Any, session: Any,
                                                          staff: Any, catalog: Any) -> None:
    text = run(client, "name,phone,zip\r\nGus,515-555-0100,50401\r\nHal,,50401\r\n", 3,
               col_0="first_name").get_data(as_text=True)
    assert re.search(r'<span class="num">1</span><span class="label">created', text)
    assert re.search(r'<span class="num">1</span><span class="label">rejected', text)
    lead = session.scalars(select(Lead)).one()
    assert (lead.first_name, lead.phone_normalized) == ("Gus", "+15155550100")
    rows = report_rows(client, session.scalars(select(LeadImport)).one().id)
    assert rows[1][0] == "3" and "Give an email address or a phone number" in rows[1][2]


def test_error_report_is_safe_to_open_in_a_spreadsheet(client: Any, session: Any,
                                                       staff: Any, catalog: Any) -> None:
    run(client, 'email,=HYPERLINK("http://evil.example")\r\n'
                f"ok@ok.example,{'x' * 501}\r\n", 2)
    rows = report_rows(client, session.scalars(select(LeadImport)).one().id)
    assert rows[1][0] == "2"
    assert rows[1][1] == "'=HYPERLINK(\"http://evil.example\")"
    assert count(session, Lead) == 0


def test_non_utf8_file_is_refused_with_its_line(client: Any, session: Any, staff: Any,
                                                tmp_path: Path) -> None:
    body = b"email,city\r\na@b.example,Ames\r\nc@d.example," + b"M\xfcnster\r\n"
    response = upload(client, body)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The file is not UTF-8: line 3 has the byte 0xFC" in page
    assert count(session, LeadImport) == 0
    assert not any((tmp_path / "imports").iterdir())  # the stored copy was removed


def test_bom_and_utf8_text_are_fine(client: Any, session: Any, staff: Any,
                                    catalog: Any) -> None:
    body = "\ufeffEmail,City,Zip\r\nmia@m.example,Münster,50401\r\n".encode()
    response = upload(client, body)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert selected(page, 0) == "email" and "Münster" in page


@pytest.mark.parametrize(("body", "message"), [
    (b"", "The file is empty."),
    (b"email,name\r\n", "The file has a header row but no data rows."),
    (b"\r\n\r\n", "The first line must be a header row"),
    (b'email,name\r\na@b.example,"unclosed\r\n', "malformed"),
    (b'email,name\r\na@b.example,"x"y\r\n', "Line 2: the CSV is malformed"),
])
def test_unusable_files_are_refused(client: Any, session: Any, staff: Any, body: bytes,
                                    message: str) -> None:
    response = upload(client, body)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(session, LeadImport) == 0


def test_oversized_upload_is_refused(client: Any, app: Any, session: Any, staff: Any) -> None:
    app.config["LEAD_IMPORT_MAX_BYTES"] = 100
    response = upload(client, "email\r\n" + "a@b.example\r\n" * 20)
    assert response.status_code == 422
    assert "The file is larger than" in response.get_data(as_text=True)
    assert count(session, LeadImport) == 0


def test_mapping_problems_are_shown_per_column(client: Any, session: Any, staff: Any,
                                               catalog: Any) -> None:
    response = upload(client, "email,mail2,name\r\na@b.example,c@d.example,Ann\r\n")
    map_url = response.headers["Location"]
    twice = client.post(map_url, data={"col_0": "email", "col_1": "email", "col_2": "ignore"})
    assert twice.status_code == 422
    assert "Column 1 is already mapped to email" in twice.get_data(as_text=True)
    none = client.post(map_url, data={"col_0": "ignore", "col_1": "ignore",
                                      "col_2": "first_name"})
    assert none.status_code == 422
    assert "Map a column to email or phone" in none.get_data(as_text=True)
    assert session.get(LeadImport, int(map_url.split("/")[-2])).status == "uploaded"
    assert count(session, Lead) == 0


def test_progress_fragment_polls_while_running(client: Any, session: Any, staff: Any) -> None:
    running = LeadImport(filename="big.csv", stored_name="x.csv", sha256="0" * 64,
                         status=ImportStatus.RUNNING, total_rows=10, processed=4, created=3,
                         duplicates=1, header=["email"], mapping=["email"])
    session.add(running)
    session.commit()
    response = client.get(f"/capture/imports/{running.id}", headers={"HX-Request": "true"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert text.lstrip().startswith('<section class="card" id="import-progress"')
    assert "<html" not in text
    assert 'hx-trigger="every 1s"' in text and "Processed 4 of 10 rows (40 %)" in text
    full = client.get(f"/capture/imports/{running.id}").get_data(as_text=True)
    assert "<html" in full and 'hx-trigger="every 1s"' in full
    assert client.get(f"/capture/imports/{running.id}/errors.csv").status_code == 404
    assert client.get("/capture/imports/999999").status_code == 404


def test_imports_are_for_staff_only(client: Any, auth: Any, make_partner: Any,
                                    session: Any) -> None:
    assert client.get("/capture/imports").status_code == 302
    partner = make_partner("D9")
    session.commit()
    auth.login("partner", partner=partner)
    assert client.get("/capture/imports").status_code == 403
    assert upload(client, "email\r\na@b.example\r\n").status_code == 403


def test_imports_list_shows_past_imports(client: Any, session: Any, staff: Any,
                                         catalog: Any) -> None:
    run(client, "email,zip\r\nzed@z.example,50401\r\n", 2)
    page = client.get("/capture/imports").get_data(as_text=True)
    assert "show.csv" in page and "done" in page


def test_import_leads_command(runner: Any, app: Any, session: Any, catalog: Any,
                              tmp_path: Path) -> None:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    app.config["IMPORT_BATCH_ROWS"] = 1
    path = tmp_path / "list.csv"
    path.write_text("Email,Zip,Timeline,Budget,Product\r\n"
                    "kim@k.example,50401,now,approved,TRC\r\nbad,50401,now,approved,TRC\r\n")
    result = runner.invoke(args=["import", "leads", str(path), "--campaign", "farmshow"])
    assert result.exit_code == 1
    assert "2 rows: 1 created, 0 duplicates, 1 rejected" in result.output
    lead = session.scalars(select(Lead)).one()
    assert lead.campaign.code == "FARMSHOW" and lead.status == "offered"
    again = runner.invoke(args=["import", "leads", str(path)])
    assert "2 rows: 0 created, 1 duplicates, 1 rejected" in again.output
    refused = runner.invoke(args=["import", "leads", str(path), "--source", "nope"])
    assert refused.exit_code == 1 and "Unknown source 'nope'; one of: SHOW." in refused.output
