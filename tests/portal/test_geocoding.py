"""The online geocoder against a real local HTTP server speaking Nominatim's /search format."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import func, select

from portal.core.models import GeocodeCache
from portal.dispatch import geocoding
from portal.dispatch import services as routing_service

CALGARY = (51.0447, -114.0719)


class FakeNominatim:
    """A tiny Nominatim: answers /search with a fixed place, or fails on purpose."""

    def __init__(self) -> None:
        self.requests: list[dict[str, list[str]]] = []
        self.status = 200
        self.places: list[dict[str, Any]] = [{
            "place_id": 1, "lat": str(CALGARY[0]), "lon": str(CALGARY[1]),
            "display_name": "1 Main St, Calgary, Alberta, Canada",
            "boundingbox": ["51.0", "51.1", "-114.1", "-114.0"],
        }]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                fake.requests.append(parse_qs(url.query))
                if url.path != "/search":
                    self.send_error(404)
                    return
                if fake.status != 200:
                    self.send_error(fake.status, "geocoder broke")
                    return
                body = json.dumps(fake.places).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def searches(self) -> list[str]:
        return [query["q"][0] for query in self.requests if "q" in query]


@pytest.fixture
def nominatim(app) -> Iterator[FakeNominatim]:
    fake = FakeNominatim()
    fake.thread.start()
    app.config.update(GEOCODER="nominatim", GEOCODER_DOMAIN=f"127.0.0.1:{fake.port}",
                      GEOCODER_SCHEME="http", GEOCODER_MIN_DELAY=0.0, GEOCODER_TIMEOUT=2.0)
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _calgary_lead(make_lead, **fields):
    values = dict(country="CA", region="CA-AB", postal_code="T2P 1J9", address="1 Main St",
                  city="Calgary")
    values.update(fields)
    return make_lead(**values)


def test_unknown_postal_code_is_located_by_the_geocoder_and_routed_by_radius(
        session, nominatim, make_partner, make_lead):
    near = make_partner("YYC", territories=["radius:50"], country="CA", region="CA-AB",
                        postal_code="T2P", latitude=51.05, longitude=-114.05)
    lead = _calgary_lead(make_lead)

    result = routing_service.route_lead(session, lead)
    session.flush()

    assert nominatim.searches == ["1 Main St, Calgary, CA-AB, T2P 1J9, CA"]
    assert nominatim.requests[0]["countrycodes"] == ["ca"]
    assert result.partner is near
    assert lead.status == "offered"
    assert "location from the nominatim geocoder" in lead.routing["notes"]
    verdict = lead.routing["considered"][0]
    assert verdict["code"] == "YYC" and verdict["distance_km"] < 5
    row = session.scalars(select(GeocodeCache)).one()
    assert (row.latitude, row.longitude, row.provider) == (*CALGARY, "nominatim")


def test_the_second_lookup_comes_from_the_cache(session, nominatim, make_partner, make_lead):
    make_partner("YYC", territories=["radius:50"], country="CA", latitude=51.05,
                 longitude=-114.05)
    first = _calgary_lead(make_lead)
    routing_service.route_lead(session, first)
    # Same place, different spelling: the normalised query finds the cached answer.
    second = _calgary_lead(make_lead, address="  1 MAIN   st ", email="other@example.com")
    facts, notes = routing_service.lead_facts_and_notes(session, second)

    assert len(nominatim.searches) == 1
    assert facts.location is not None
    assert (round(facts.location.lat, 4), round(facts.location.lon, 4)) == CALGARY
    assert notes == ("location from the nominatim geocoder (cached)",)


def test_not_found_is_cached_too(session, nominatim, make_lead):
    nominatim.places = []
    lead = _calgary_lead(make_lead, address="Nowhere Road")

    assert routing_service.lead_facts(session, lead).location is None
    assert routing_service.lead_facts(session, lead).location is None

    assert len(nominatim.searches) == 1
    row = session.scalars(select(GeocodeCache)).one()
    assert row.latitude is None and row.longitude is None


def test_a_server_error_leaves_the_location_unknown_and_routing_goes_on(
        session, nominatim, make_partner, make_lead):
    nominatim.status = 500
    province = make_partner("AB", territories=["region:CA-AB"], country="CA")
    lead = _calgary_lead(make_lead)

    result = routing_service.route_lead(session, lead)

    assert result.partner is province  # a region rule needs no location
    notes = lead.routing["notes"]
    assert any("nominatim geocoder is unavailable" in note for note in notes)
    assert any("no location for the lead" in note for note in notes)
    # An error is not an answer: nothing cached, so the next lead asks again.
    assert session.scalar(select(func.count()).select_from(GeocodeCache)) == 0
    routing_service.lead_facts(session, lead)
    assert len(nominatim.searches) == 2


def test_a_closed_port_leaves_the_location_unknown(app, session, make_lead):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed again: connections are refused.
    app.config.update(GEOCODER="nominatim", GEOCODER_DOMAIN=f"127.0.0.1:{port}",
                      GEOCODER_SCHEME="http", GEOCODER_MIN_DELAY=0.0, GEOCODER_TIMEOUT=2.0)
    lead = _calgary_lead(make_lead)

    result = routing_service.route_lead(session, lead)

    assert result.partner is None and lead.status == "unassigned"
    assert any("geocoder is unavailable" in note for note in lead.routing["notes"])


def test_offline_geocoder_and_known_centroids_never_ask_the_network(
        app, session, nominatim, make_lead):
    # A US lead with a known postal code uses the shipped centroid, not the geocoder.
    us_lead = make_lead(postal_code="50401", address="1 Main St", city="Mason City")
    assert routing_service.lead_facts(session, us_lead).location is not None
    # A lead with nothing to look up is not sent either.
    bare = make_lead(country="CA", region="CA-AB", postal_code="")
    assert routing_service.lead_facts(session, bare).location is None
    app.config["GEOCODER"] = "offline"
    unknown = _calgary_lead(make_lead)
    assert routing_service.lead_facts(session, unknown).location is None

    assert nominatim.requests == []


def test_query_normalisation():
    assert geocoding.normalise("  1 Main  St ,Calgary ") == "1 main st, calgary"
    long_key = geocoding.normalise("x" * 400)
    assert len(long_key) == 300 and long_key != geocoding.normalise("x" * 401)
    assert geocoding.address_query("", "", "US-IA", "", "US") is None
