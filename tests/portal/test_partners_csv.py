"""The partners CSV (DESIGN §6): export, import, the upload page and the commands."""

from __future__ import annotations

import csv
import html
import io
from urllib.parse import unquote

import pytest
from sqlalchemy import delete, func, select

from portal.core.models import Partner, Territory, partner_product_lines
from portal.partners import csv as partners_csv
from routing.geo import CentroidTable

HEADER = ("code,name,kind,parent,email,phone,address,city,region,postal_code,country,"
          "latitude,longitude,product_lines,capacity,territories,forwarding")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join((header, *rows)) + "\n").encode()


def row(code: str, **cells: str) -> str:
    """A CSV line for a valid dealer, with some cells replaced."""
    values = {
        "code": code, "name": f"Dealer {code}", "kind": "dealer", "parent": "",
        "email": f"{code.lower()}@dealer.example", "phone": "+1 641 555 0100",
        "address": "1 Main St", "city": "Mason City", "region": "US-IA",
        "postal_code": "50401", "country": "US", "latitude": "43.15", "longitude": "-93.2",
        "product_lines": "TRC", "capacity": "5", "territories": "zip:504*",
        "forwarding": "",
    }
    values.update(cells)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values.values())
    return buffer.getvalue().removesuffix("\n")


def snapshot(session) -> dict[str, dict[str, object]]:
    """Every stored fact of every partner, keyed by code."""
    session.expire_all()
    result = {}
    for partner in session.scalars(select(Partner).order_by(Partner.code)):
        result[partner.code] = {
            "name": partner.name, "kind": partner.kind,
            "parent": partner.parent.code if partner.parent else None,
            "email": partner.email, "phone": partner.phone, "address": partner.address,
            "city": partner.city, "region": partner.region,
            "postal_code": partner.postal_code, "country": partner.country,
            "latitude": partner.latitude, "longitude": partner.longitude,
            "location_from_centroid": partner.location_from_centroid,
            "capacity": partner.capacity, "forwarding": partner.forwarding,
            "active": partner.active,
            "product_lines": [line.code for line in partner.product_lines],
            "territories": [t.rule for t in partner.territories],
        }
    return result


def run_import(session, data: bytes, max_bytes: int = 10 * 1024 * 1024):
    return partners_csv.import_partners(session, io.BytesIO(data), max_bytes=max_bytes)


@pytest.fixture
def lines(make_product_line):
    return [make_product_line("TRC"), make_product_line("MWR")]


@pytest.fixture
def network(session, make_partner, make_product_line):
    """A distributor with dealers, covering the awkward cases of every column."""
    make_product_line("OLD", active=False)
    dist = make_partner("D1", kind="distributor", name="North, \"Big\" Distribution",
                        forwarding="auto", capacity=None, product_lines=["TRC", "MWR"],
                        territories=["region:US-IA", "zip:50400-50499"])
    make_partner("X1", parent_id=dist.id, name="=HYPERLINK(\"http://evil.example\")",
                 phone="+1 641 555 0100", address="-1 Loop Rd\nSuite 2", capacity=0,
                 territories=["zip:50401", "zip:504*", "radius:80"],
                 product_lines=["OLD", "TRC"])
    ames = CentroidTable.us().get("US", "50010")
    make_partner("X2", name="@Ames Farm", latitude=ames.lat, longitude=ames.lon,
                 location_from_centroid=True, postal_code="50010", city="Ames",
                 territories=["country:US"], product_lines=[])
    make_partner("X3", name="Paused Dealer", active=False, country="CA", region="CA-ON",
                 postal_code="K1A 0B1", latitude=45.42, longitude=-75.69,
                 territories=["zip:K1A*"])
    session.commit()  # keep them past the GET requests' rollbacks
    return dist


# --- export -----------------------------------------------------------------------------


def test_export_page_streams_the_csv_with_formula_defence(auth, client, network):
    auth.login("manager")
    response = client.get("/manage/partners/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.is_streamed
    body = response.get_data(as_text=True)
    assert body.startswith("\ufeff" + HEADER + "\r\n")
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))}
    assert list(rows) == ["D1", "X1", "X2", "X3"]
    assert rows["X1"]["name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert rows["X1"]["phone"] == "'+1 641 555 0100"
    assert rows["X1"]["address"] == "'-1 Loop Rd\nSuite 2"
    assert rows["X2"]["name"] == "'@Ames Farm"
    assert rows["X1"]["longitude"] == "-93.2"  # a plain number is not a formula
    assert rows["X1"]["parent"] == "D1"
    assert rows["X1"]["territories"] == "zip:50401;zip:504*;radius:80"
    assert rows["X1"]["product_lines"] == "OLD;TRC"
    assert rows["X1"]["capacity"] == "0"
    assert rows["D1"]["capacity"] == ""
    assert rows["D1"]["forwarding"] == "auto"
    assert rows["D1"]["name"] == 'North, "Big" Distribution'
    assert rows["X1"]["forwarding"] == ""
    # a location taken from the postal code is left for the import to derive again
    assert (rows["X2"]["latitude"], rows["X2"]["longitude"]) == ("", "")


def test_export_command_writes_the_same_rows(runner, network, tmp_path):
    target = tmp_path / "partners.csv"
    result = runner.invoke(args=["export", "partners", str(target)])
    assert result.exit_code == 0, result.output
    written = target.read_bytes().decode()
    assert written.startswith(HEADER + "\r\n")
    assert len(list(csv.DictReader(io.StringIO(written)))) == 4


def test_export_streams_in_chunks(session, network):
    chunks = list(partners_csv.export_partners(session, chunk_size=2))
    assert len(chunks) == 3  # header, then two chunks of two partners
    assert chunks[0] == HEADER + "\r\n"


# --- round trip -------------------------------------------------------------------------


def test_export_then_import_round_trips_every_field(session, network):
    before = snapshot(session)
    exported = "".join(partners_csv.export_partners(session, bom=True)).encode()

    # wipe everything, then import the file into the empty table
    session.execute(delete(Territory))
    session.execute(delete(partner_product_lines))
    session.execute(delete(Partner).where(Partner.parent_id.is_not(None)))
    session.execute(delete(Partner))
    session.flush()
    assert snapshot(session) == {}
    report = run_import(session, exported)
    assert (report.fatal, report.errors) == (None, [])
    assert (report.created, report.updated) == (4, 0)
    # pausing is not part of the CSV: a re-created partner starts active
    assert snapshot(session) == {code: dict(facts, active=True) for code, facts in before.items()}

    # modify, then import again: the file wins, every partner is updated
    x3 = session.scalars(select(Partner).where(Partner.code == "X3")).one()
    x3.active = False

    x1 = session.scalars(select(Partner).where(Partner.code == "X1")).one()
    x1.name = "Changed"
    x1.territories = [Territory(kind="country", value="CA")]
    x1.product_lines = []
    session.flush()
    report = run_import(session, exported)
    assert (report.created, report.updated, report.errors) == (0, 4, [])
    assert snapshot(session) == before  # and an import leaves a pause alone


def test_importing_the_same_file_twice_changes_nothing(session, lines):
    data = csv_bytes(row("D9", kind="distributor", forwarding="manual"),
                     row("X9", parent="D9", territories="zip:50401;region:US-IA"))
    first = run_import(session, data)
    assert (first.created, first.updated, first.errors) == (2, 0, [])
    stamps = {p.code: p.updated_at for p in session.scalars(select(Partner))}
    before = snapshot(session)
    territory_ids = set(session.scalars(select(Territory.id)))
    second = run_import(session, data)
    assert (second.created, second.updated, second.unchanged, second.errors) == (0, 2, 2, [])
    assert snapshot(session) == before
    assert set(session.scalars(select(Territory.id))) == territory_ids
    assert {p.code: p.updated_at for p in session.scalars(select(Partner))} == stamps


# --- bad input ---------------------------------------------------------------------------


def test_wrong_columns_are_fatal_and_listed(session, lines):
    header = HEADER.replace(",forwarding", ",colour").replace("phone,", "")
    report = run_import(session, csv_bytes("A,B", header=header))
    assert report.fatal is not None
    assert "missing phone, forwarding" in report.fatal
    assert "unknown colour" in report.fatal
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_header_in_another_order_and_case_is_accepted(session, lines):
    columns = HEADER.split(",")
    header = ",".join(c.upper() for c in reversed(columns))
    cells = next(csv.reader([row("X1")]))
    line = ",".join(f'"{c}"' for c in reversed(cells))
    report = run_import(session, csv_bytes(line, header=header))
    assert (report.fatal, report.errors, report.created) == (None, [], 1)


def test_bad_rows_are_reported_by_line_and_column_and_good_rows_kept(session, lines):
    data = csv_bytes(
        row("GOOD1"),
        row("bad code!"),
        row("X2", parent="NOPE"),
        row("X3", product_lines="TRC;ZZZ"),
        row("X4", email="nobody", capacity="-3"),
        row("X5", territories="zip:50401;planet:mars"),
        row("GOOD2", kind="distributor", territories=""),
        row("X6", territories="zip:5020"),
        row("CA1", country="CA", region="CA-ON", postal_code="K1A0B1",
            territories="zip:K1A*"),
    )
    report = run_import(session, data)
    assert report.fatal is None
    assert (report.created, report.updated) == (3, 0)
    assert report.error_lines == [3, 4, 5, 6, 7, 9]
    found = {(e.line, e.column): e.message for e in report.errors}
    assert "A code is 1–32 letters" in found[(3, "code")]
    assert found[(4, "parent")] == "No distributor has the code NOPE."
    assert found[(5, "product_lines")] == "No product line has the code ZZZ."
    assert "Enter a valid email address" in found[(6, "email")]
    assert "Enter a whole number" in found[(6, "capacity")]
    assert "unknown territory kind 'planet'" in found[(7, "territories")]
    # A US partner's ZIP rules are US ZIP codes; a Canadian partner's are Canada's.
    assert "'zip:5020': zip 5020: a US ZIP code is 5 digits" in found[(9, "territories")]
    assert str(report.errors[0]).startswith("line 3, column code: ")
    codes = set(session.scalars(select(Partner.code)))
    assert codes == {"GOOD1", "GOOD2", "CA1"}
    # nothing of the rejected rows was written, not even their valid territory rules
    assert session.scalar(select(func.count(Territory.id))) == 2


def test_row_with_wrong_number_of_cells(session, lines):
    report = run_import(session, csv_bytes("X1,Only two", row("X2"), row("X3") + ",extra"))
    assert [(e.line, e.column) for e in report.errors] == [(2, ""), (4, "")]
    assert "This row has 2 cells; the header has 17." in report.errors[0].message
    assert report.created == 1


def test_line_numbers_count_physical_lines(session, lines):
    # a quoted cell over two lines: the next row starts on line 4
    data = csv_bytes(row("X1", address="1 Main St\nBack door"), row("bad!"))
    report = run_import(session, data)
    assert [(e.line, e.column) for e in report.errors] == [(4, "code")]


def test_dealer_before_its_distributor_in_the_file(session, lines):
    data = csv_bytes(row("X1", parent="D1"), row("D1", kind="distributor"))
    report = run_import(session, data)
    assert (report.created, report.errors) == (2, [])
    session.expire_all()
    dealer = session.scalars(select(Partner).where(Partner.code == "X1")).one()
    assert dealer.parent.code == "D1"


def test_dealer_of_a_rejected_distributor_says_why(session, lines):
    data = csv_bytes(row("X1", parent="D1"), row("D1", kind="distributor", email="bad"))
    report = run_import(session, data)
    found = {(e.line, e.column): e.message for e in report.errors}
    assert found[(2, "parent")] == ("No distributor has the code D1 "
                                    "(its row on line 3 was rejected).")
    assert report.created == 0


def test_duplicate_codes_in_one_file(session, lines):
    report = run_import(session, csv_bytes(row("X1", name="First"), row("x1", name="Second")))
    assert report.created == 1
    assert [(e.line, e.column) for e in report.errors] == [(3, "code")]
    assert "Code X1 already appears on line 2" in report.errors[0].message
    assert session.scalars(select(Partner.name)).one() == "First"


def test_existing_code_is_updated_and_its_rules_replaced(session, make_partner, lines):
    make_partner("X1", name="Old", territories=["region:US-IA", "zip:50401"],
                 product_lines=["TRC"])
    report = run_import(session, csv_bytes(row("X1", name="New", territories="zip:50402",
                                               product_lines="MWR")))
    assert (report.created, report.updated, report.errors) == (0, 1, [])
    data = snapshot(session)["X1"]
    assert (data["name"], data["territories"], data["product_lines"]) == (
        "New", ["zip:50402"], ["MWR"])


def test_formula_cells_are_stored_as_text(session, lines):
    report = run_import(session, csv_bytes(
        row("X1", name="=1+2", address="'=SUM(A1:A9)", city="@city", phone="'+1 555 0100"),
    ))
    assert report.errors == []
    data = snapshot(session)["X1"]
    assert data["name"] == "=1+2"  # as written: never evaluated
    assert data["address"] == "=SUM(A1:A9)"  # the export's quote is removed once
    assert data["city"] == "@city"
    assert data["phone"] == "+1 555 0100"
    exported = "".join(partners_csv.export_partners(session))
    assert "'=1+2" in exported and "'=SUM(A1:A9)" in exported and "'@city" in exported


def test_a_leading_quote_before_ordinary_text_is_kept(session, lines):
    report = run_import(session, csv_bytes(row("X1", name="'t Hoekje")))
    assert report.errors == []
    assert snapshot(session)["X1"]["name"] == "'t Hoekje"


def test_non_utf8_file_is_refused_naming_the_line(session, lines):
    data = csv_bytes(row("X1")) + row("X2", city="Montr\u00e9al").encode("latin-1") + b"\n"
    report = run_import(session, data)
    assert report.fatal is not None
    assert "not UTF-8" in report.fatal
    assert "line 3" in report.fatal and "0xE9" in report.fatal
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_utf8_with_bom_and_crlf_is_read(session, lines):
    data = b"\xef\xbb\xbf" + csv_bytes(row("X1", city="Montr\u00e9al")).replace(b"\n", b"\r\n")
    report = run_import(session, data)
    assert (report.fatal, report.errors, report.created) == (None, [], 1)
    assert snapshot(session)["X1"]["city"] == "Montr\u00e9al"


def test_file_over_the_size_limit_changes_nothing(session, lines):
    data = csv_bytes(row("X1"))
    report = run_import(session, data, max_bytes=len(data) - 1)
    assert report.fatal is not None and "larger than" in report.fatal
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_empty_file_is_fatal(session, lines):
    assert "empty" in run_import(session, b"").fatal


# --- the upload page ---------------------------------------------------------------------


def upload(client, data: bytes, name: str = "partners.csv"):
    return client.post("/manage/partners/import", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_upload_page_shows_counts_errors_and_an_error_csv(auth, client, session, lines):
    auth.login("manager")
    assert client.get("/manage/partners/import").status_code == 200
    response = upload(client, csv_bytes(row("X1"), row("X2", parent="NOPE"),
                                        row("X3", name="=cmd|' /C calc'!A0", email="x")))
    assert response.status_code == 200
    page = text(response)
    assert "1</span><span class=\"label\">created" in page
    assert "2</span><span class=\"label\">rows rejected" in page
    assert "No distributor has the code NOPE." in page
    start = response.get_data(as_text=True).index('href="data:text/csv;charset=utf-8,') + 6
    href = html.unescape(response.get_data(as_text=True)[start:].split('"', 1)[0])
    problems = list(csv.DictReader(io.StringIO(unquote(href.split(",", 1)[1]))))
    assert [(p["line"], p["column"]) for p in problems] == [("3", "parent"), ("4", "email")]
    session.expire_all()
    assert set(session.scalars(select(Partner.code))) == {"X1"}


def test_upload_with_wrong_header_is_refused(auth, client, session, lines):
    auth.login("manager")
    response = upload(client, csv_bytes(row("X1"), header=HEADER.replace("code,", "id,")))
    assert response.status_code == 422
    assert "missing code" in text(response) and "unknown id" in text(response)
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_upload_over_the_partner_limit_is_refused(app, auth, client, session, lines):
    app.config["PARTNERS_CSV_MAX_BYTES"] = 200
    auth.login("manager")
    response = upload(client, csv_bytes(row("X1"), row("X2")))
    assert response.status_code == 422
    assert "larger than" in text(response)
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_upload_over_the_request_limit_gets_413(app, auth, client, session, lines):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    auth.login("manager")
    response = upload(client, csv_bytes(*(row(f"X{n}") for n in range(20))))
    assert response.status_code == 413
    assert session.scalar(select(func.count(Partner.id))) == 0


def test_upload_without_a_file(auth, client):
    auth.login("manager")
    response = client.post("/manage/partners/import", data={},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose a CSV file." in text(response)


def test_upload_non_utf8_shows_the_reason(auth, client, session, lines):
    auth.login("manager")
    response = upload(client, csv_bytes(row("X1", city="K\xf6ln")).replace(
        "K\xf6ln".encode(), "K\xf6ln".encode("latin-1")))
    assert response.status_code == 422
    assert "not UTF-8: line 2" in text(response)


# --- the command -------------------------------------------------------------------------


def test_import_command_reports_lines_and_fails_on_rejected_rows(runner, session, lines,
                                                                 tmp_path):
    path = tmp_path / "partners.csv"
    path.write_bytes(csv_bytes(row("X1"), row("X2", product_lines="ZZZ")))
    result = runner.invoke(args=["import", "partners", str(path)])
    assert result.exit_code == 1
    assert "line 3, column product_lines: No product line has the code ZZZ." in result.output
    assert "1 created, 0 updated, 1 rows rejected" in result.output
    session.expire_all()
    assert set(session.scalars(select(Partner.code))) == {"X1"}


def test_import_command_succeeds_on_a_clean_file(runner, session, lines, tmp_path):
    path = tmp_path / "partners.csv"
    path.write_bytes(csv_bytes(row("X1"), row("X2")))
    result = runner.invoke(args=["import", "partners", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 created, 0 updated, 0 rows rejected" in result.output
    result = runner.invoke(args=["import", "partners", str(path)])
    assert "0 created, 2 updated, 0 rows rejected" in result.output


def test_import_command_fatal_error(runner, session, lines, tmp_path):
    path = tmp_path / "partners.csv"
    path.write_bytes(b"name,city\nA,B\n")
    result = runner.invoke(args=["import", "partners", str(path)])
    assert result.exit_code == 1
    assert "The header row does not match" in result.output
    assert session.scalar(select(func.count(Partner.id))) == 0
