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


def check(client: Any, map_url: str, data: dict[str, str]) -> str:
    """Save a mapping and run its dry run: the mapping page showing it."""
    checked = client.post(map_url, data=data)
    assert checked.status_code == 303, checked.get_data(as_text=True)
    assert checked.headers["Location"].endswith("#dry-run")
    page = client.get(map_url)
    assert page.status_code == 200
    return page.get_data(as_text=True)


def start(client: Any, map_url: str) -> Any:
    """Press Import under the dry run; the progress page."""
    started = client.post(map_url, data={"action": "start"})
    assert started.status_code == 303, started.get_data(as_text=True)
    return client.get(started.headers["Location"])


def run(client: Any, text: str, columns: int, **overrides: str) -> Any:
    """Upload, keep the proposed mapping (with ``overrides``), check, import; the
    progress page."""
    response = upload(client, text)
    assert response.status_code == 303, response.get_data(as_text=True)
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    check(client, map_url, mapping_data(page, columns, **overrides))
    return start(client, map_url)


def tile(page: str, label: str) -> int:
    """The number on a count tile whose label starts with ``label``."""
    found = re.search(rf'<span class="num">([\d,]+)</span><span class="label">{label}', page)
    assert found, f"no tile {label!r}"
    return int(found.group(1).replace(",", ""))


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
    dry = check(client, map_url, mapping_data(
        page, 9, default_campaign=str(catalog["campaign"].id),
        default_source=str(catalog["source"].id)))
    assert (tile(dry, "would be created"), tile(dry, "would join"),
            tile(dry, "would be refused")) == (3, 0, 3)
    assert count(session, Lead) == 0
    progress = start(client, map_url)
    text = progress.get_data(as_text=True)
    assert progress.status_code == 200
    assert "Status:</strong> Done" in text
    assert "Processed 6 of 6 rows (100 %)" in text
    assert tile(text, "created") == 3 and tile(text, "refused") == 3
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
    assert tile(text, "created") == 0 and tile(text, "joined to an existing lead") == 3
    assert count(session, Lead) == 3
    assert session.scalar(select(func.sum(Lead.inquiries))) == events_before


def test_same_person_in_another_list_is_attached(client: Any, session: Any, staff: Any,
                                                 catalog: Any) -> None:
    run(client, "email,first_name,postal_code,external_id\r\n"
                "ann@able.example,Ann,50401,CRM-1\r\n", 4)
    text = run(client, "Email,Name,Zip,Id\r\nANN@able.example,Annie,50401,\r\n"
                       "x@y.example,Xavier,50401,CRM-1\r\n", 4,
               col_1="first_name").get_data(as_text=True)
    assert tile(text, "joined to an existing lead") == 2
    lead = session.scalars(select(Lead)).one()
    assert lead.inquiries == 3


def test_rows_with_a_phone_import_without_an_email_column(client: Any, session: Any,
                                                          staff: Any, catalog: Any) -> None:
    text = run(client, "name,phone,zip\r\nGus,515-555-0100,50401\r\nHal,,50401\r\n", 3,
               col_0="first_name").get_data(as_text=True)
    assert tile(text, "created") == 1 and tile(text, "refused") == 1
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
    assert "Column 1 is already mapped to Email" in twice.get_data(as_text=True)
    none = client.post(map_url, data={"col_0": "ignore", "col_1": "ignore",
                                      "col_2": "first_name"})
    assert none.status_code == 422
    assert "Map a column to Email or Phone" in none.get_data(as_text=True)
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
    assert "show.csv" in page and "<td>Done</td>" in page


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


# --- value mapping, common headers, dry run, past campaigns ---------------------------------


@pytest.fixture
def lines(session: Any, catalog: Any, make_product_line: Any) -> dict[str, Any]:
    """The catalog's product lines as a manufacturer names them, with other names."""
    tractors = make_product_line("TRC")
    tractors.name, tractors.aliases = "Compact tractors", ["CUT", "utility tractor"]
    mowers = make_product_line("MWR", name="Zero-turn mowers")
    session.commit()
    return {"TRC": tractors, "MWR": mowers}


DEALER_LIST = (
    "Name,Farm / Company,E-mail,Phone number,Postal code,Interested in,Timeframe,"
    "Budget range,Purchase role\r\n"
    "Ann Able,Able Acres,ann@able.example,,50401,Compact tractors,this month,$20k-50k,Owner\r\n"
    "Bob Baker,Baker Farm,bob@baker.example,,50401,compact tractor,3 months,approved,"
    "Operator\r\n"
    "Cy Cole,,cy@cole.example,,50401,TRC,next year,not sure,Agronomist\r\n"
    "Di Dean,,di@dean.example,,50401,Skid steers,right away,approved,Owner\r\n"
    "Ed Eve,,ed@eve.example,,50401,Zero-turn mowers,spring,none,Owner\r\n"
)


def value_select(page: str, value: str) -> tuple[str, str]:
    """The pick list of ``value`` on the mapping page: (its field name, what is picked)."""
    row = re.search(rf'<label for="(val_\d+_\d+)">“{re.escape(value)}”</label>.*?</tr>',
                    page, re.S)
    assert row, f"no pick list for {value!r}"
    block = re.search(rf'<select id="{row.group(1)}".*?</select>', page, re.S)
    assert block
    picked = re.search(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected',
                       block.group(0))
    assert picked, f"nothing picked for {value!r}"
    return row.group(1), picked.group(1) if picked.group(1) is not None else picked.group(2)


def test_common_headers_and_values_are_matched_and_a_value_mapped_by_hand(
        client: Any, session: Any, staff: Any, lines: Any) -> None:
    response = upload(client, DEALER_LIST)
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    assert [selected(page, i) for i in range(9)] == [
        "full_name", "company", "email", "phone", "postal_code", "product_line", "timeline",
        "budget", "role"]
    # Human labels, never field ids, for what a column is taken as.
    assert "Full name (split into first and last)" in page and "Purchase role" in page
    assert ">postal_code<" not in page and ">product_line<" not in page
    picks = {value: value_select(page, value)[1] for value in (
        "Compact tractors", "compact tractor", "TRC", "Zero-turn mowers", "this month",
        "3 months", "next year", "right away", "$20k-50k", "approved", "not sure", "Owner",
        "Operator", "Agronomist")}
    assert picks == {
        "Compact tractors": "TRC", "compact tractor": "TRC", "TRC": "TRC",
        "Zero-turn mowers": "MWR", "this month": "now", "3 months": "3_months",
        "next year": "12_months", "right away": "now", "$20k-50k": "planned",
        "approved": "approved", "not sure": "unknown", "Owner": "decision_maker",
        "Operator": "user", "Agronomist": "influencer"}
    # Unknown values are flagged: a product line nobody recognises refuses its rows, an
    # answer nobody recognises is left empty (a lead whose timeline says "spring" is still
    # a lead), unless the person picks otherwise.
    skid, skid_pick = value_select(page, "Skid steers")
    spring, spring_pick = value_select(page, "spring")
    assert (skid_pick, spring_pick) == ("", "-")
    assert page.count("Not recognised</span>") == 1 and page.count("Left empty</span>") == 1

    # The person maps them: skid steers are shown to the tractor dealers, spring is soon.
    dry = check(client, map_url, mapping_data(page, 9, **{skid: "TRC", spring: "6_months"}))
    assert (tile(dry, "would be created"), tile(dry, "would be refused")) == (5, 0)
    assert value_select(dry, "Skid steers")[1] == "TRC"  # remembered for this import
    assert value_select(dry, "spring")[1] == "6_months"
    assert "Not recognised</span>" not in dry
    assert count(session, Lead) == 0

    start(client, map_url)
    leads = {lead.first_name: lead for lead in session.scalars(select(Lead))}
    assert {name: (lead.last_name, lead.product_line.code) for name, lead in leads.items()} == {
        "Ann": ("Able", "TRC"), "Bob": ("Baker", "TRC"), "Cy": ("Cole", "TRC"),
        "Di": ("Dean", "TRC"), "Ed": ("Eve", "MWR")}
    assert leads["Ann"].company == "Able Acres"
    assert leads["Ann"].answers == {"timeline": "now", "budget": "planned",
                                    "role": "decision_maker"}
    assert leads["Ed"].answers["timeline"] == "6_months"
    assert leads["Cy"].answers["budget"] == "unknown"


def test_an_unmapped_value_is_refused_with_the_capture_reason(
        client: Any, session: Any, staff: Any, lines: Any) -> None:
    response = upload(client, DEALER_LIST)
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    skid, _ = value_select(page, "Skid steers")
    spring, _ = value_select(page, "spring")
    dry = check(client, map_url, mapping_data(page, 9, **{spring: ""}))  # refuse "spring"
    assert (tile(dry, "would be created"), tile(dry, "would be refused")) == (3, 2)
    assert "Unknown product line &#39;Skid steers&#39;" in dry
    assert "Timeframe: One of: now, 3_months" in dry  # the file's column, the rule's words
    # "Leave empty": the rows come in without a product line, or a timeline, instead.
    dry = check(client, map_url, mapping_data(dry, 9, **{skid: "-", spring: ""}))
    assert tile(dry, "would be refused") == 1
    dry = check(client, map_url, mapping_data(dry, 9, **{skid: "-", spring: "-"}))
    assert (tile(dry, "would be created"), tile(dry, "would be refused")) == (5, 0)


def test_the_dry_run_writes_nothing_and_shows_what_would_happen(
        client: Any, session: Any, staff: Any, lines: Any, make_lead: Any) -> None:
    from portal.core.models import IdempotencyKey, LeadEvent, Notification, Offer

    known = make_lead(first_name="Kim", last_name="Known", email="kim@known.example")
    session.commit()
    text = ("Email,First,Last,Zip,Interested in,Timeline,Budget\r\n"
            "new@one.example,Nia,New,50401,Compact tractors,now,approved\r\n"
            "KIM@known.example,Kim,Known,50401,TRC,now,approved\r\n"
            "bad@zip.example,Zed,Zip,5020,TRC,now,approved\r\n"
            "new@one.example,Nia,New,50401,TRC,3 months,approved\r\n"
            "x@y.example,Xu,Yi,ABCDE,TRC,now,approved\r\n")

    def written() -> tuple[int, ...]:
        return (count(session, Lead), count(session, LeadEvent), count(session, Offer),
                count(session, Notification), count(session, IdempotencyKey),
                session.scalar(select(func.sum(Lead.inquiries))))

    before = written()
    response = upload(client, text)
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    assert 'id="dry-run"' not in page  # no Import before a check
    dry = check(client, map_url, mapping_data(page, 7))
    assert (tile(dry, "would be created"), tile(dry, "would join"),
            tile(dry, "would be refused")) == (1, 2, 2)
    assert written() == before
    assert f'href="/leads/{known.id}">Kim Known</a>' in dry
    assert "the lead of line 2 of this file" in dry
    assert "Zip: Enter a 5-digit ZIP code." in dry
    assert "Nia New, new@one.example" in dry
    assert "Import 3 rows" in dry
    client.get(map_url)  # looking again changes nothing either
    assert written() == before
    lead_import = session.scalars(select(LeadImport)).one()
    assert lead_import.status == "uploaded"

    progress = start(client, map_url).get_data(as_text=True)
    assert (tile(progress, "created"), tile(progress, "joined"),
            tile(progress, "refused")) == (1, 2, 2)
    assert count(session, Lead) == before[0] + 1


def test_import_needs_a_dry_run_first(client: Any, session: Any, staff: Any,
                                      lines: Any) -> None:
    response = upload(client, "email,zip\r\nzed@z.example,50401\r\n")
    map_url = response.headers["Location"]
    refused = client.post(map_url, data={"action": "start"})
    assert refused.status_code == 303 and refused.headers["Location"].endswith(map_url)
    page = client.get(map_url).get_data(as_text=True)
    assert "Check the mapping first" in page
    assert session.scalars(select(LeadImport)).one().status == "uploaded"
    assert count(session, Lead) == 0


def test_the_dry_run_fragment_polls_while_its_job_checks(client: Any, session: Any,
                                                         staff: Any, lines: Any) -> None:
    from portal.capture.jobs import import_sweep
    from portal.core.models import utcnow

    response = upload(client, "email,zip\r\nzed@z.example,50401\r\n")
    map_url = response.headers["Location"]
    lead_import = session.scalars(select(LeadImport)).one()
    lead_import.checked_at = utcnow()  # saved, its nudge lost: the job has not run
    session.commit()
    fragment = client.get(map_url, headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    assert text.lstrip().startswith('<section class="card" id="dry-run"')
    assert 'hx-trigger="every 1s"' in text and "Checking the 1 rows" in text
    assert client.post(map_url, data={"action": "start"}).status_code == 303
    assert session.get(LeadImport, lead_import.id).status == "uploaded"  # not before it

    assert import_sweep() == 1  # the sweeper runs the check the nudge lost
    text = client.get(map_url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in text and tile(text, "would be created") == 1
    assert "Import 1 rows" in text


def test_a_past_campaign_is_credited_by_the_picker_or_by_a_column(
        client: Any, session: Any, staff: Any, lines: Any) -> None:
    from datetime import date

    ended = Campaign(code="FALLSHOW-25", name="Fall farm show 2025", active=False,
                     starts_on=date(2025, 9, 1), ends_on=date(2025, 9, 3))
    session.add(ended)
    session.commit()
    response = upload(client, "Email,Zip,Campaign\r\n"
                              "a@a.example,50401,Fall farm show 2025\r\n"
                              "b@b.example,50401,\r\n")
    map_url = response.headers["Location"]
    page = client.get(map_url).get_data(as_text=True)
    assert "Fall farm show 2025 (FALLSHOW-25), ended 2025-09-03" in page  # in the picker
    assert value_select(page, "Fall farm show 2025")[1] == "FALLSHOW-25"
    dry = check(client, map_url, mapping_data(page, 3, default_campaign=str(ended.id)))
    assert tile(dry, "would be created") == 2 and tile(dry, "would be refused") == 0
    start(client, map_url)
    assert {lead.email: lead.campaign.code for lead in session.scalars(select(Lead))} == {
        "a@a.example": "FALLSHOW-25", "b@b.example": "FALLSHOW-25"}


def test_a_product_lines_other_names_are_kept_and_must_not_name_another_line(
        client: Any, auth: Any, session: Any, lines: Any) -> None:
    auth.login("admin")
    url = f"/manage/product-lines/{lines['MWR'].id}/edit"
    saved = client.post(url, data={"code": "MWR", "name": "Zero-turn mowers",
                                   "aliases": "zero turn, ZTR,  zero turn ", "active": "y"})
    assert saved.status_code == 303
    assert lines["MWR"].aliases == ["zero turn", "ZTR"]
    assert "zero turn, ZTR" in client.get(url).get_data(as_text=True)
    clash = client.post(url, data={"code": "MWR", "name": "Zero-turn mowers",
                                   "aliases": "ZTR, cut", "active": "y"})
    assert clash.status_code == 422
    assert "“cut” already names Compact tractors (TRC)." in clash.get_data(as_text=True)
    assert lines["MWR"].aliases == ["zero turn", "ZTR"]


def test_import_leads_command_maps_values_and_credits_an_ended_campaign(
        runner: Any, app: Any, session: Any, lines: Any, tmp_path: Path) -> None:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    session.add(Campaign(code="OLDSHOW", name="Old show", active=False))
    session.commit()
    path = tmp_path / "list.csv"
    path.write_text("E-mail,Zip,Interested in,Timeframe,Budget\r\n"
                    "kim@k.example,50401,Compact tractors,this month,approved\r\n")
    result = runner.invoke(args=["import", "leads", str(path), "--campaign", "oldshow"])
    assert result.exit_code == 0, result.output
    assert "1 rows: 1 created" in result.output
    lead = session.scalars(select(Lead)).one()
    assert (lead.product_line.code, lead.answers["timeline"], lead.campaign.code) == (
        "TRC", "now", "OLDSHOW")


def test_import_leads_command_dry_run_writes_nothing(runner: Any, app: Any, session: Any,
                                                     lines: Any, tmp_path: Path) -> None:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    path = tmp_path / "list.csv"
    path.write_text("E-mail,Zip,Interested in\r\n"
                    "kim@k.example,50401,Compact tractors\r\nlee@l.example,5020,TRC\r\n")
    result = runner.invoke(args=["import", "leads", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert ("dry run, nothing written: 2 rows: 1 would be created, 0 would join an existing "
            "lead, 1 would be refused") in result.output
    assert "line 3: Zip: Enter a 5-digit ZIP code." in result.output
    assert count(session, Lead) == 0 and count(session, LeadImport) == 0
    assert not any((tmp_path / "imports").iterdir())


def test_values_past_the_listed_ones_are_still_matched(client: Any, session: Any, staff: Any,
                                                       lines: Any, monkeypatch: Any) -> None:
    from portal.capture import imports

    monkeypatch.setattr(imports, "MAX_DISTINCT", 1)  # a file with more values than listed
    text = run(client, "Email,Zip,Interested in\r\n"
                       "a@a.example,50401,Compact tractors\r\nb@b.example,50401,CUT\r\n"
                       "c@c.example,50401,zero-turn mower\r\n", 3).get_data(as_text=True)
    assert tile(text, "created") == 3
    assert {lead.email: lead.product_line.code for lead in session.scalars(select(Lead))} == {
        "a@a.example": "TRC", "b@b.example": "TRC", "c@c.example": "MWR"}
