"""Demo data: Prairie Implement Co.'s dealer channel with four months of lead history.

Every lead change goes through :mod:`portal.core.lifecycle` with explicit past times, so the
events, offers and partner counters are what four months of real use would leave behind.
Partners sit at real US postal codes (city, state and centroid from the ``zipcodes``
package) and every lead is placed at a real postal code inside the territory of the
partner it is offered to. A seeded ``random.Random`` keeps the data the same on every run.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from random import Random
from typing import Any

from flask import current_app
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portal.capture.services import current_rules, qualify_lead
from portal.core import assignment, lifecycle, localtime
from portal.core.lifecycle import Actor
from portal.core.models import (
    OPEN_STATUSES,
    WORKING_STATUSES,
    Campaign,
    Competitor,
    EnrollmentStatus,
    Fulfilment,
    Lead,
    LeadStatus,
    NurtureEnrollment,
    NurtureSend,
    NurtureStep,
    NurtureTrack,
    Partner,
    ProductLine,
    Role,
    Source,
    Territory,
    User,
    utcnow,
)
from portal.leads import tasks
from routing import Point, TerritoryRule, distance_km, parse_rule

PASSWORD = "demo-password"
SEED = 2026
LEAD_COUNT = 2000
HISTORY_DAYS = 120
BATCH = 500  #: leads written to the database at once

PRODUCT_LINES = (
    ("TRC", "Compact tractors", "25–60 hp compact and utility tractors, loaders, backhoes."),
    ("MWR", "Zero-turn mowers", "Residential and commercial zero-turn mowers, 42–72 in. decks."),
    ("UTV", "Utility vehicles", "Two- and four-seat utility vehicles for farm and ranch work."),
)
#: the other names the lines go by in dealers' and shows' lists (a lead import knows them)
LINE_ALIASES = {
    "TRC": ["compact tractor", "tractor", "utility tractor", "CUT"],
    "MWR": ["zero turn", "ZTR", "mower", "lawn mower"],
    "UTV": ["side by side", "side-by-side", "SxS", "utility vehicle"],
}
LINE_PRICES = {"TRC": (18_000, 60_000), "MWR": (8_000, 22_000), "UTV": (12_000, 32_000)}

#: made-up brands; none is a real trademark
COMPETITORS = (
    "Harvest Ridge Machinery", "Blue Furrow Tractors", "Ironbark Equipment",
    "Meadowlark Mowers", "Quarry Creek Utility", "Redfield Implement", "Stonegate Power",
    "Wheatland Motor Works",
)
#: what partners type when the competitor is not on the list
TYPED_COMPETITORS = ("used tractor from a neighbour", "Online auction", "Hilltop Used Equipment",
                     "local rental yard", "Big-box store mower")

SOURCES = (  # code, name, cost per lead
    ("WEB", "Web form", Decimal("18.00")),
    ("SHOW", "Trade show", Decimal("45.00")),
    ("CALL", "Call centre", Decimal("32.00")),
    ("LIST", "Purchased list", Decimal("6.50")),
    ("REFER", "Partner referral", Decimal("0.00")),
)
SOURCE_WEIGHTS = (50, 14, 16, 12, 8)

#: code, name, channel, cost, first day, last day (days ago), product line, source
CAMPAIGNS = (
    ("WINTER-TRC", "Winter compact tractor clearance", "email", Decimal("14500"), 118, 88,
     "TRC", "WEB"),
    ("FARMSHOW-IA", "Iowa Farm Show booth", "event", Decimal("22000"), 104, 101, None, "SHOW"),
    ("SPRING-MWR", "Spring zero-turn test drive days", "web", Decimal("18000"), 80, 40,
     "MWR", "WEB"),
    ("RANCH-UTV", "Ranch-ready UTV search ads", "search", Decimal("12500"), 70, 20, "UTV", "WEB"),
    ("OUTBOUND-Q2", "Call centre follow-up of catalogue requests", "phone", Decimal("9800"), 60,
     10, None, "CALL"),
    ("FINANCE-0", "0 % financing for 48 months", "web", Decimal("26000"), 35, 0, "TRC", "WEB"),
)


@dataclass
class DealerSpec:
    postal_code: str
    name: str
    rules: tuple[str, ...]
    lines: tuple[str, ...]
    capacity: int | None


@dataclass
class DistributorSpec:
    code: str
    name: str
    postal_code: str
    regions: tuple[str, ...]
    forwarding: str
    lines: tuple[str, ...]
    extra_rules: tuple[str, ...]
    dealers: tuple[DealerSpec, ...]
    capacity: int | None = None


DISTRIBUTORS = (
    DistributorSpec(
        "HEARTLAND", "Heartland Ag Supply", "50309", ("US-IA", "US-MN"), "manual",
        ("TRC", "MWR", "UTV"), (), (
            DealerSpec("50401", "North Iowa Implement", ("zip:504*",), ("TRC", "MWR", "UTV"), 40),
            DealerSpec("50010", "Story County Tractor & Turf", ("radius:50",), ("TRC", "MWR"),
                       None),
            DealerSpec("52001", "Tri-State Farm Equipment", ("zip:52001-52099",),
                       ("TRC", "UTV"), 30),
            DealerSpec("51501", "Loess Hills Equipment", ("zip:515*", "zip:516*"),
                       ("TRC", "MWR", "UTV"), 35),
            DealerSpec("52240", "Johnson County Outdoor Power",
                       ("zip:52240", "zip:52241", "zip:52245", "zip:52246", "zip:52317",
                        "zip:52333"), ("MWR",), 20),
            DealerSpec("50501", "Fort Dodge Ag Center", ("radius:80",), ("TRC", "UTV"), None),
            DealerSpec("51301", "Spencer Farm & Lawn", ("zip:513*",), ("TRC", "MWR"), 25),
            DealerSpec("52601", "River Bend Implement", ("zip:52601-52699",),
                       ("TRC", "MWR", "UTV"), 30),
            DealerSpec("55901", "Zumbro Valley Equipment", ("radius:70",),
                       ("TRC", "MWR", "UTV"), 40),
            DealerSpec("56001", "Minnesota River Machinery", ("zip:560*", "zip:561*"),
                       ("TRC", "UTV"), None),
        ),
    ),
    DistributorSpec(
        "LONESTAR", "Lone Star Implement Distributors", "76102", ("US-TX", "US-OK"), "auto",
        ("TRC", "MWR"), ("country:US",), (
            DealerSpec("79401", "South Plains Tractor", ("zip:793*", "zip:794*"), ("TRC",), 40),
            DealerSpec("76901", "Concho Valley Equipment", ("radius:100",), ("TRC", "MWR"), None),
            DealerSpec("75701", "Piney Woods Power Equipment", ("zip:757*",), ("TRC", "MWR"), 35),
            DealerSpec("76501", "Bell County Mower Center", ("zip:76501-76599",), ("MWR",), 25),
            DealerSpec("77301", "Lake Conroe Outdoor Power", ("radius:40",), ("TRC", "MWR"), 30),
            DealerSpec("79601", "Big Country Implement", ("zip:795*", "zip:796*"), ("TRC",),
                       None),
            DealerSpec("74074", "Cimarron Farm Supply",
                       ("zip:74074", "zip:74075", "zip:74059", "zip:73077", "zip:74032"),
                       ("TRC", "MWR"), 15),
            DealerSpec("73801", "High Plains Equipment", ("radius:120",), ("TRC",), None),
            DealerSpec("74701", "Texoma Tractor & Mower", ("zip:747*",), ("TRC", "MWR"), 20),
            DealerSpec("78840", "Border Ranch Equipment", ("zip:78840-78843",), ("TRC",), 15),
        ),
    ),
    DistributorSpec(
        "PIEDMONT", "Southern Piedmont Equipment", "30303", ("US-GA", "US-SC", "US-NC"),
        "manual", ("TRC", "MWR", "UTV"), (), (
            DealerSpec("31794", "Tift Area Farm Equipment", ("radius:90",), ("TRC", "UTV"), None),
            DealerSpec("30601", "Classic City Tractor", ("zip:306*",), ("TRC", "MWR", "UTV"), 40),
            DealerSpec("31201", "Middle Georgia Power & Turf", ("zip:31201-31299",),
                       ("MWR", "UTV"), 30),
            DealerSpec("30720", "Carpet Capital Mowers", ("zip:307*",), ("MWR",), 20),
            DealerSpec("29801", "Aiken Equine & Farm Equipment", ("zip:298*",), ("TRC", "MWR"),
                       25),
            DealerSpec("29301", "Upstate Outdoor Power", ("radius:45",), ("TRC", "MWR", "UTV"),
                       35),
            DealerSpec("29501", "Pee Dee Implement", ("zip:295*",), ("TRC", "UTV"), None),
            DealerSpec("27530", "Wayne County Tractor",
                       ("zip:27530", "zip:27534", "zip:27863", "zip:28365", "zip:27830"),
                       ("TRC",), 15),
            DealerSpec("28601", "Catawba Valley Equipment", ("zip:286*",),
                       ("TRC", "MWR", "UTV"), 40),
            DealerSpec("27834", "Pitt County Farm & Turf", ("zip:27834-27858",), ("TRC", "MWR"),
                       30),
        ),
    ),
    DistributorSpec(
        "BUCKEYE", "Buckeye Hoosier Power Equipment", "43215", ("US-OH", "US-IN"), "auto",
        ("TRC", "MWR", "UTV"), (), (
            DealerSpec("45840", "Hancock County Implement", ("zip:458*",),
                       ("TRC", "MWR", "UTV"), 40),
            DealerSpec("44691", "Wayne County Farm Power", ("radius:50",), ("TRC", "UTV"), None),
            DealerSpec("45601", "Scioto Valley Tractor", ("zip:456*",), ("TRC", "MWR"), 25),
            DealerSpec("43055", "Licking Valley Outdoor Power", ("zip:43001-43099",),
                       ("MWR", "UTV"), 35),
            DealerSpec("45385", "Greene County Mower & Small Engine", ("radius:35",), ("MWR",),
                       20),
            DealerSpec("47901", "Wabash Valley Equipment", ("zip:479*",), ("TRC", "MWR", "UTV"),
                       40),
            DealerSpec("46901", "Kokomo Farm & Turf", ("zip:469*",), ("TRC", "MWR"), None),
            DealerSpec("47401", "Monroe County Power Equipment",
                       ("zip:47401", "zip:47403", "zip:47404", "zip:47408", "zip:47429",
                        "zip:47460"), ("MWR", "UTV"), 15),
            DealerSpec("47201", "Bartholomew Farm Equipment", ("zip:472*",), ("TRC", "UTV"), 30),
            DealerSpec("46350", "Lakeshore Implement", ("radius:60",), ("TRC", "MWR", "UTV"), 35),
        ),
    ),
)
#: the dealer paused at the end of the load (no offers in its last 30 days)
PAUSED_DEALER = "51301"
#: postal codes outside every distributor's regions: Lone Star's country rule catches
#: tractors and mowers there; utility vehicles there find nobody
OUTSIDE_ZIPS = ("59101", "67401", "68801", "80521", "64468", "57701", "82001", "87501", "72701",
                "37040", "35801", "62401", "53901", "49001", "84321")
#: the national fallback rule: the country rule that catches the postal codes above
_NATIONAL = TerritoryRule("country", "US")

#: email, what it is (the ``demo`` command prints these)
DEMO_LOGINS: list[tuple[str, str]] = [
    ("admin@demo.test", "admin: rules, territories, products, users"),
    ("manager@demo.test", "channel manager: search, queue, routing fixes, compliance"),
    ("distributor1@demo.test", "Heartland Ag Supply (IA/MN distributor, manual forwarding)"),
    ("distributor2@demo.test", "Lone Star Implement Distributors (TX/OK + national, auto)"),
    ("distributor3@demo.test", "Southern Piedmont Equipment (GA/SC/NC, manual forwarding)"),
    ("distributor4@demo.test", "Buckeye Hoosier Power Equipment (OH/IN, auto forwarding)"),
    ("dealer1@demo.test", "North Iowa Implement, Mason City IA (partner admin)"),
    ("sales1@demo.test", "North Iowa Implement, Mason City IA (a salesperson: My leads)"),
    ("dealer2@demo.test", "South Plains Tractor, Lubbock TX"),
    ("dealer3@demo.test", "Classic City Tractor, Athens GA"),
    ("dealer4@demo.test", "Hancock County Implement, Findlay OH"),
    ("dealer5@demo.test", "Spencer Farm & Lawn, Spencer IA (paused dealer) (partner admin)"),
]
#: the salespeople of dealer1's firm (its administrator assigns them leads)
SALESPEOPLE = (("sales1@demo.test", "Jordan Miles"),
               ("casey.brandt@nia.example.net", "Casey Brandt"))
#: dealer postal code → its demo login (the others get a salesperson at example.net)
_DEMO_DEALER_LOGINS = {"50401": "dealer1@demo.test", "79401": "dealer2@demo.test",
                       "30601": "dealer3@demo.test", "45840": "dealer4@demo.test",
                       "51301": "dealer5@demo.test"}

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Karen",
    "Charles", "Sarah", "Daniel", "Lisa", "Matthew", "Nancy", "Mark", "Sandra", "Steven",
    "Ashley", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kevin", "Carol", "Brian",
    "Amanda", "Gary", "Melissa", "Tyler", "Rebecca", "Wade", "Colleen", "Dale", "Shelby", "Cody",
    "Tanya", "Lyle", "Marisol", "Hector", "Ingrid", "Arne", "Darnell", "Keisha", "Luis", "Mei",
    "Omar", "Priya", "Trent",
)
LAST_NAMES = (
    "Anderson", "Johnson", "Olson", "Hansen", "Peterson", "Miller", "Schmidt", "Meyer", "Nelson",
    "Larson", "Wagner", "Becker", "Hoffman", "Garcia", "Martinez", "Hernandez", "Lopez", "Smith",
    "Brown", "Davis", "Wilson", "Moore", "Taylor", "Thomas", "Jackson", "White", "Harris",
    "Martin", "Thompson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker",
    "Adams", "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker",
    "Collins", "Edwards", "Stewart", "Morris", "Nguyen", "Reyes", "Kowalski", "Lindqvist",
    "Okafor", "Patel", "Yoder", "Hostetler", "Bauer", "Fischer",
)
COMPANY_PATTERNS = (
    "{last} Family Farms", "{last} Farms LLC", "{last} & Sons Landscaping", "{place} Acres",
    "{place} Creek Ranch", "{last} Lawn Care", "{place} Orchard", "{last} Cattle Co.",
    "{place} Golf Club", "{place} Hollow Nursery", "{last} Grounds Maintenance",
    "{place} Township Roads", "{place} Christmas Tree Farm", "{last} Horse Boarding",
)
PLACES = ("Oak", "Cedar", "Willow", "Prairie", "Maple", "Stony", "Clear", "Elm", "Hickory",
          "Bluestem", "Pine", "Walnut", "Sandy", "Otter", "Buffalo")
STREETS = ("County Road", "Highway", "Main St", "Oak St", "Elm St", "Township Road", "Ridge Rd",
           "Prairie Ln", "Mill Rd", "Church St", "Lakeview Dr", "Old Farm Rd", "Section Line Rd")
COMMENTS = {
    "TRC": ("Need a tractor with a loader for 40 acres and snow removal.",
            "Looking at 35–45 hp with a backhoe. What financing is available?",
            "Replacing a 30-year-old tractor, want hydrostatic and a cab.",
            "Hobby farm, mostly mowing pasture and moving round bales.",
            "Can you quote a 25 hp with mid-mount mower deck?"),
    "MWR": ("Commercial crew, need two 60 in. zero-turns before spring.",
            "Mowing 3 acres, want something faster than my lawn tractor.",
            "Golf course rough, interested in a 72 in. deck demo.",
            "Is there a dealer who can deliver and service on site?",
            "Comparing 52 in. and 60 in. decks, hilly yard."),
    "UTV": ("Four-seat UTV for ranch checks, need a dump bed.",
            "Want a gas UTV with a winch and plow mount.",
            "Looking for something to haul feed and fencing supplies.",
            "Trail and hunting use, quiet engine preferred.",
            "Two UTVs for a vineyard, narrow width matters."),
}
DECLINE_CHOICES = ("out_of_area", "no_capacity", "not_our_product", "duplicate", "other")
DECLINE_FREE_TEXT = ("Customer already buying from us on another quote",
                     "We do not service that county", "Owner on vacation this week")
NOTES = ("Left a voicemail, will try again Thursday.", "Customer wants to see it at the farm show.",
         "Sent the brochure and a financing sheet.", "Trade-in appraisal scheduled.",
         "Spouse needs to see it before they decide.", "Asked for a demo unit on site.",
         "Waiting on the bank for financing approval.")
REASSIGN_REASONS = ("Customer asked for the store nearer their farm",
                    "Dealer is short-staffed this month", "Customer is an existing account there")
REOPEN_REASONS = ("Outcome reported by mistake", "Customer called back and wants a new quote")


# --- geography ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """A real US postal code with its city, state and centroid (from ``zipcodes``)."""

    zip: str
    city: str
    state: str
    lat: float
    lon: float
    area_code: str

    @property
    def point(self) -> Point:
        """The centroid as the routing engine's point."""
        return Point(self.lat, self.lon)


class Geography:
    """The standard US postal codes, looked up once per load."""

    def __init__(self) -> None:
        import zipcodes

        self.places: dict[str, Place] = {}
        for row in zipcodes.list_all():
            if row["zip_code_type"] != "STANDARD" or not row["active"]:
                continue
            codes = row.get("area_codes") or ["555"]
            self.places[row["zip_code"]] = Place(
                row["zip_code"], row["city"], row["state"], float(row["lat"]),
                float(row["long"]), codes[0],
            )
        self.sorted = sorted(self.places.values(), key=lambda p: p.zip)
        self.codes = [p.zip for p in self.sorted]
        self.by_state: dict[str, list[Place]] = {}
        for place in self.sorted:
            self.by_state.setdefault(place.state, []).append(place)

    def _between(self, low: str, high: str) -> list[Place]:
        return self.sorted[bisect_left(self.codes, low):bisect_right(self.codes, high)]

    def place(self, code: str) -> Place:
        """The place for ``code``; the demo data must only name real postal codes."""
        try:
            return self.places[code]
        except KeyError:
            raise ValueError(f"demo data names an unknown US postal code {code}") from None

    def covered(self, rule: TerritoryRule, home: Place) -> list[Place]:
        """The postal codes a territory rule (parsed by ``routing``) covers."""
        if rule.kind == "zip":
            return [self.place(rule.value)]
        if rule.kind == "zip_prefix":
            return self._between(rule.value, rule.value + "~")
        if rule.kind == "zip_range":
            return self._between(*rule.bounds)
        if rule.kind == "region":
            return list(self.by_state.get(rule.value.partition("-")[2], ()))
        if rule.kind == "country":
            return list(self.sorted)
        km = rule.radius_km
        span = km / 111.0  # degrees of latitude; a cheap box before the exact distance
        centre = home.point
        return [p for p in self.sorted if abs(p.lat - home.lat) <= span
                and abs(p.lon - home.lon) <= span * 2
                and distance_km(centre, p.point) <= km]


# --- the loader ---------------------------------------------------------------------------


def is_loaded(session: Session) -> bool:
    """True when the demo partners or users are already there."""
    codes = [d.code for d in DISTRIBUTORS]
    return (
        session.scalars(select(Partner.id).where(Partner.code.in_(codes)).limit(1)).first()
        is not None
        or session.scalars(select(User.id).where(User.email == DEMO_LOGINS[0][0])).first()
        is not None
    )


def load_demo(session: Session, *, now: datetime | None = None) -> bool:
    """Load the demo channel and its lead history once; False (and no change) if present."""
    if is_loaded(session):
        return False
    now = now or utcnow()
    from portal.fulfilment import pdf

    # The brochures are rendered at the end: the render process starts (and imports
    # WeasyPrint) on the other core meanwhile.
    pdf.start_pool(int(current_app.config.get("PDF_RENDER_PROCESSES", 1)))
    with lifecycle.loading_history(session):  # months ago: nobody is alerted of those
        _DemoBuilder(session, now).build()
        session.flush()
    _literature(session)
    _fresh_offers(session, now)
    with lifecycle.loading_history(session):  # nobody is mailed for the demo's past
        _assignments(session)
    _follow_up_tasks(session, now)
    return True


def _assignments(session: Session) -> None:
    """dealer1's administrator has given most of the firm's open leads to its people (a
    few stay unassigned, to take), and two of today's offers to sales1: a new user sees
    "My leads", the "Assigned to" names and the per-person counts at once."""
    boss = session.scalars(select(User).where(User.email == "dealer1@demo.test")).first()
    if boss is None or boss.partner_id is None:
        return
    people = [session.scalars(select(User).where(User.email == login)).one()
              for login, _ in SALESPEOPLE] + [boss]
    leads = list(session.scalars(
        select(Lead).where(Lead.assigned_partner_id == boss.partner_id,
                           Lead.status.in_([str(s) for s in OPEN_STATUSES]))
        .order_by(Lead.offered_at, Lead.id)))
    working = [lead for lead in leads if lead.status != LeadStatus.OFFERED]
    offered = [lead for lead in leads if lead.status == LeadStatus.OFFERED]
    by = Actor.of(boss)
    for n, lead in enumerate(working):
        if n % 4 != 3:  # every fourth waits for someone to take it
            _assign_quietly(session, lead, people[n % len(people)], by)
    for lead in offered[:2]:
        _assign_quietly(session, lead, people[0], by)


def _assign_quietly(session: Session, lead: Lead, person: User, by: Actor) -> None:
    """Assigned today, as the timeline says, without making the lead look worked today:
    its last activity stays what its history left (a neglected lead still sorts as one)."""
    touched = lead.updated_at
    assignment.assign(session, lead, person, by)
    lead.updated_at = touched


#: the demo's nurture emails per product line: delay (days after the one before), subject,
#: body, (link slug, link label); ``{line}`` is the product line's name
NURTURE_STEPS = (
    (0, "Choosing {line}: a buyer's guide",
     "Thanks for your interest. Our guide walks you through sizes, attachments and what "
     "to ask a dealer, so you can decide at your own pace.", ("guide", "Read the guide")),
    (14, "What owners say after a year with our {line}",
     "Three owners tell what they use their machine for, what it costs to run and what "
     "they would choose again.", ("owners", "Read their stories")),
    (30, "Ready when you are: a demonstration at your dealer",
     "When the time is right, your local dealer brings one to your place. Financing offers "
     "change each season; ask for this month's.", ("offers", "See this season's offers")),
)


#: the demo dealer's follow-up tasks: (what, due relative to now in hours, note)
DEMO_TASKS = (
    ("call_back", -20.0, "Promised a call about financing."),
    ("send_quote", 1.0, "Loader and backhoe package, as discussed."),
    ("call_back", 3.0, "Check whether the trade-in was appraised."),
    ("visit", 50.0, "Demo on the farm; bring the 45 hp model."),
)


def _follow_up_tasks(session: Session, now: datetime) -> None:
    """A few open follow-up tasks for the demo's first dealer, on its leads being worked:
    one overdue (due 20 hours ago), two due later today (as late as 23:45 in its zone), one
    in two days: "Tasks due today" and the dashboard have something to show."""
    user = session.scalars(select(User).where(User.email == "dealer1@demo.test")).first()
    if user is None or user.partner_id is None:
        return
    leads = list(session.scalars(  # their own or nobody's: a colleague's lead's tasks are
        select(Lead).where(Lead.assigned_partner_id == user.partner_id,  # the colleague's
                           Lead.status.in_([str(s) for s in WORKING_STATUSES]),
                           or_(Lead.assigned_user_id == user.id,
                               Lead.assigned_user_id.is_(None)))
        .order_by(Lead.accepted_at.desc(), Lead.id).limit(len(DEMO_TASKS))))
    where = localtime.zone_of(session, user)
    end_of_today = localtime.local_day_bounds(now, where)[1] - timedelta(minutes=15)
    for lead, (kind, hours, note) in zip(leads, DEMO_TASKS, strict=False):
        due = now + timedelta(hours=hours)
        if 0 < hours < 24:
            due = min(due, max(end_of_today, now + timedelta(minutes=5)))
        here = due.astimezone(where)
        tasks.add_task(session, lead, user, kind=kind, day=here.date().isoformat(),
                       clock=here.strftime("%H:%M"), note=note, time_zone=where.key,
                       now=now, device="web")


#: one brochure per product line, written in the library's own text format (headings,
#: paragraphs, bullets) and rendered to PDF by it, so the demo's packs have content
BROCHURES = {
    "TRC": """# Compact tractors that earn their keep
From 25 to 60 hp, our compact and utility tractors mow, dig, lift and haul through every
season. Every model takes our quick-attach loader and backhoe.
- Hydrostatic or gear transmission, four-wheel drive as standard
- Quick-attach loader with 1,200 to 2,400 lb lift
- Category I three-point hitch and live rear PTO
# Backed by your local dealer
Your dealer sets the tractor up, delivers it and services it, with parts in stock.""",
    "MWR": """# Zero-turn mowers for every acre
Residential and commercial zero-turn mowers with 42 to 72 inch fabricated decks, for a
clean cut at speed.
- Commercial-grade hydrostatic drive
- Adjustable high-back seat with armrests
- Deck lift in quarter-inch steps
# Try one on your own lawn
Ask your dealer for a demonstration at home.""",
    "UTV": """# Utility vehicles for farm and ranch
Two- and four-seat utility vehicles that carry a crew, tow a trailer and tip a load.
- 1,000 lb dump bed and 2,000 lb towing
- Selectable four-wheel drive with locking differential
- Roll-over protective structure and seat belts
# Built for work
Your dealer fits the cab, plough or sprayer you need.""",
}


def demo_logo() -> bytes:
    """The demo manufacturer's logo: a green badge with its initials, drawn as a PNG."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (120, 40), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 119, 39), radius=8, fill=(46, 125, 50, 255))
    draw.text((60, 20), "PRAIRIE", fill=(255, 255, 255, 255), anchor="mm", font_size=18)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _literature(session: Session) -> None:
    """A brochure for each demo product line, through the literature library."""
    from portal.core.models import LiteratureItem
    from portal.fulfilment import library

    if session.scalars(select(LiteratureItem).limit(1)).first() is not None:
        return  # the manufacturer's own library is kept as it is
    for position, (code, name, _) in enumerate(PRODUCT_LINES, start=1):
        line = session.scalars(select(ProductLine).where(ProductLine.code == code)).one()
        item = library.save_item(session, None, title=f"{name} brochure",
                                 product_line_id=line.id, kind="brochure",
                                 position=position, active=True)
        library.write_version(session, item, body=BROCHURES[code], user=None, activate=True)


#: new inquiries per demo dealer login, so that every flow (accept and work, decline,
#: with and without JavaScript) can be tried several times on a freshly loaded demo
FRESH_OFFERS_PER_DEALER = 8


#: new inquiries waiting with each demo distributor that forwards by hand, to pass on
FRESH_TO_FORWARD = 3


def _fresh_inquiry(session: Session, rng: Random, tag: str, postal_code: str, line: str,
                   now: datetime, *, minutes_ago: int) -> Lead:
    """One sales-ready inquiry through the real capture path, ``minutes_ago``."""
    from portal.capture.services import capture_inquiry

    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return capture_inquiry(session, {
        "first_name": first, "last_name": last,
        "email": f"{first}.{last}.{tag}@example.com".lower(),
        "phone": f"(515) 555-{rng.randint(1000, 9999)}",
        "postal_code": postal_code, "country": "US", "product_line": line,
        "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
        "comments": "Saw your booth at the farm show; please call.",
        # Those asking for the brochure came in minutes ago: their packs go when the
        # worker next runs, minutes after the inquiry as in the product (sent hours after
        # a back-dated capture, they looked slow).
        "wants_literature": minutes_ago < 10,
    }, Actor.system("api"), now=now - timedelta(minutes=minutes_ago)).lead


def _fresh_offers(session: Session, now: datetime) -> None:
    """A few inquiries from the last hours for each demo dealer, through the real capture
    path: qualified, routed by the engine (with its full explanation) and, where the
    distributor forwards by hand, forwarded by the distributor's user. Whatever the time
    of day the demo is loaded, the demo dealers have offers to accept, and the demo
    distributors that forward by hand have a few to forward."""
    rng = Random(SEED + 1)
    for n, (postal_code, login) in enumerate(sorted(_DEMO_DEALER_LOGINS.items())):
        user = session.scalars(select(User).where(User.email == login)).first()
        dealer = user.partner if user else None
        if dealer is None or not dealer.active or not dealer.product_lines:
            continue
        for k in range(FRESH_OFFERS_PER_DEALER):
            # half ask for the brochure (minutes ago), the others came over the day
            minutes = rng.randint(1, 8) if k % 2 == 0 else rng.randint(10, 300)
            lead = _fresh_inquiry(session, rng, f"{n}{k}", postal_code,
                                  rng.choice(dealer.product_lines).code, now,
                                  minutes_ago=minutes)
            parent = dealer.parent
            if (lead.status == LeadStatus.OFFERED and parent is not None
                    and lead.assigned_partner_id == parent.id):
                forwarder = session.scalars(
                    select(User).where(User.partner_id == parent.id)).first()
                when = lead.created_at
                lifecycle.forward(session, lead, dealer, Actor.of(forwarder),
                                  reason="closest dealer",
                                  now=when + min(timedelta(minutes=5), (now - when) / 2))
    for spec in DISTRIBUTORS:
        if spec.forwarding != "manual":
            continue
        # At a dealer of its own that is not a demo login: the engine offers it to the
        # distributor, which has not passed it on yet.
        dealer_spec = next(d for d in spec.dealers if d.postal_code not in _DEMO_DEALER_LOGINS)
        for k in range(FRESH_TO_FORWARD):
            _fresh_inquiry(session, rng, f"{spec.code.lower()}{k}", dealer_spec.postal_code,
                           dealer_spec.lines[0], now, minutes_ago=rng.randint(15, 240))


@dataclass
class _PartnerInfo:
    partner: Partner
    place: Place
    lines: frozenset[str]
    capacity: int | None
    coverage: list[Place] = field(default_factory=list)
    rules: tuple[TerritoryRule, ...] = ()
    #: rule → the postal codes it covers (the national rule is left out: it covers all)
    rule_zips: dict[TerritoryRule, set[str]] = field(default_factory=dict)
    zips: set[str] = field(default_factory=set)
    actor: Actor | None = None
    dealers: list[_PartnerInfo] = field(default_factory=list)
    parent: _PartnerInfo | None = None
    weight: float = 1.0


class _DemoBuilder:
    """Builds the catalogue, the channel, the users and the leads in one session."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now.replace(microsecond=0)
        self.rng = Random(SEED)
        self.geo = Geography()
        self.system = Actor.system("job")
        self.open: dict[int, int] = {}
        self.lines: dict[str, ProductLine] = {}
        self.sources: dict[str, Source] = {}
        self.campaigns: list[tuple[Campaign, datetime, datetime, str | None, str]] = []
        self.competitors: list[str] = []
        self.distributors: list[_PartnerInfo] = []
        self.dealers: list[_PartnerInfo] = []
        self.manager: Actor | None = None
        #: the manufacturer's qualification rules (the defaults on a new portal)
        self.rules = current_rules(session)
        self.password_hash: str | None = None
        self.serial = 0
        #: product line code → its nurture track and the track's steps in order
        self.tracks: dict[str, tuple[NurtureTrack, list[NurtureStep]]] = {}
        #: lead id → (partner id, when) of its first offer: the dealer its pack names
        self.first_offer: dict[Any, tuple[int, datetime]] = {}
        #: the nurture sweeps' and the pack worker's timing (apart from ``rng``, so the
        #: leads' stories stay as they were)
        self.jobs_rng = Random(SEED + 2)

    # --- catalogue, channel, users

    def build(self) -> None:
        """Everything, in dependency order; the paused dealer is paused last."""
        self._catalogue()
        self._campaign_look()
        self._nurture_tracks()
        self._channel()
        self._users()
        self.session.flush()
        self._leads()
        paused = next(d for d in self.dealers if d.place.zip == PAUSED_DEALER).partner
        paused.active = False
        paused.paused_reason = "Owner out after surgery until spring"

    def _catalogue(self) -> None:
        """Product lines, competitors, sources and campaigns (existing ones are reused)."""
        session = self.session
        existing = {line.code: line for line in session.scalars(select(ProductLine))}
        for code, name, description in PRODUCT_LINES:
            line = existing.get(code) or ProductLine(code=code, name=name,
                                                     description=description)
            if not line.aliases:
                line.aliases = list(LINE_ALIASES[code])
            session.add(line)
            self.lines[code] = line
        known = set(session.scalars(select(Competitor.name)))
        for name in COMPETITORS:
            if name not in known:
                session.add(Competitor(name=name))
        self.competitors = list(COMPETITORS)
        sources = {s.code: s for s in session.scalars(select(Source))}
        for code, name, cost in SOURCES:
            source = sources.get(code) or Source(code=code, name=name, cost_per_lead=cost)
            session.add(source)
            self.sources[code] = source
        campaigns = {c.code: c for c in session.scalars(select(Campaign))}
        today = self.now.date()
        for code, name, channel, cost, first, last, line, source in CAMPAIGNS:
            campaign = campaigns.get(code) or Campaign(
                code=code, name=name, channel=channel, cost=cost,
                starts_on=today - timedelta(days=first),
                # The running one goes on for a month: the demo's form keeps taking leads.
                ends_on=today - timedelta(days=last) if last else today + timedelta(days=30),
                active=last == 0, created_at=self.now - timedelta(days=first + 14),
            )
            session.add(campaign)
            start = self.now - timedelta(days=first)
            end = self.now - timedelta(days=last)
            self.campaigns.append((campaign, start, end, line, source))

    def _partner(self, code: str, name: str, kind: str, place: Place, lines: Iterable[str],
                 rules: Sequence[str], capacity: int | None, **extra: Any) -> _PartnerInfo:
        rng = self.rng
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:24]
        partner = Partner(
            code=code, name=name, kind=kind, email=f"leads@{slug}.example.com",
            phone=f"({place.area_code}) 555-{rng.randint(100, 199):04d}",
            address=f"{rng.randint(100, 9800)} {rng.choice(STREETS)}"
                    + (f" {rng.randint(1, 99)}" if rng.random() < 0.3 else ""),
            city=place.city, region=f"US-{place.state}", postal_code=place.zip, country="US",
            latitude=place.lat, longitude=place.lon, location_from_centroid=True,
            capacity=capacity, open_leads=0,
            created_at=self.now - timedelta(days=HISTORY_DAYS + 30), **extra,
        )
        partner.product_lines = [self.lines[c] for c in sorted(lines)]
        # The one parser, as for the partners CSV: the demo stores what an import would.
        parsed = tuple(parse_rule(text) for text in rules)
        for position, rule in enumerate(parsed):
            partner.territories.append(Territory(kind=rule.kind, value=rule.value,
                                                 position=position))
        self.session.add(partner)
        coverage: dict[str, Place] = {}
        rule_zips: dict[TerritoryRule, set[str]] = {}
        for rule in parsed:
            if rule.kind != "country":  # the national fallback is handled apart
                places = self.geo.covered(rule, place)
                coverage.update((p.zip, p) for p in places)
                rule_zips[rule] = {p.zip for p in places}
        return _PartnerInfo(partner=partner, place=place, lines=frozenset(lines),
                            capacity=capacity, coverage=list(coverage.values()),
                            rules=parsed, rule_zips=rule_zips, zips=set(coverage))

    def _channel(self) -> None:
        """Four distributors with ten dealers each, at real postal codes."""
        for spec in DISTRIBUTORS:
            rules = tuple(f"region:{r}" for r in spec.regions) + spec.extra_rules
            dist = self._partner(spec.code, spec.name, "distributor",
                                 self.geo.place(spec.postal_code), spec.lines, rules,
                                 spec.capacity, forwarding=spec.forwarding)
            self.distributors.append(dist)
            for number, dealer_spec in enumerate(spec.dealers, start=1):
                place = self.geo.place(dealer_spec.postal_code)
                info = self._partner(
                    f"{spec.code[:4]}-{place.state}{number:02d}", dealer_spec.name, "dealer",
                    place, dealer_spec.lines, dealer_spec.rules, dealer_spec.capacity,
                    parent=dist.partner,
                )
                info.parent = dist
                info.weight = 1.6 if dealer_spec.capacity is None else dealer_spec.capacity / 28
                if not info.coverage:
                    raise ValueError(f"{dealer_spec.name}: its territory covers no postal code")
                dist.dealers.append(info)
                self.dealers.append(info)
        # A distributor's own area: its regions, less what its dealers cover.
        for dist in self.distributors:
            covered = {p.zip for d in dist.dealers for p in d.coverage}
            dist.coverage = [p for p in dist.coverage if p.zip not in covered]
            if not dist.coverage:
                raise ValueError(f"{dist.partner.name}: its dealers cover all of its area")

    def _user(self, email: str, name: str, role: str, partner: Partner | None = None,
              partner_admin: bool = False) -> User:
        user = User(email=email, name=name, role=role, partner=partner,
                    partner_admin=partner_admin,
                    created_at=self.now - timedelta(days=HISTORY_DAYS + 20))
        # One hash for all: they share the demo password, and ~50 Argon2id hashes would
        # cost over a second for nothing.
        if self.password_hash is None:
            user.set_password(PASSWORD)
            self.password_hash = user.password_hash
        else:
            user.password_hash = self.password_hash
        self.session.add(user)
        return user

    def _person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)

    def _users(self) -> None:
        """The printed demo logins, and one salesperson for every other partner."""
        self._user("admin@demo.test", "Morgan Ellis", Role.ADMIN)
        self.manager = Actor.of(self._user("manager@demo.test", "Priya Raman", Role.MANAGER))
        for number, dist in enumerate(self.distributors, start=1):
            first, last = self._person()
            user = self._user(f"distributor{number}@demo.test", f"{first} {last}",
                              Role.PARTNER, dist.partner, partner_admin=True)
            dist.actor = Actor.of(user)
        for dealer in self.dealers:
            first, last = self._person()
            email = _DEMO_DEALER_LOGINS.get(dealer.place.zip) or (
                f"{first}.{last}@{dealer.partner.code.lower()}.example.net".lower()
            )
            user = self._user(email, f"{first} {last}", Role.PARTNER, dealer.partner,
                              partner_admin=email in ("dealer1@demo.test", "dealer5@demo.test"))
            dealer.actor = Actor.of(user)
            if email == "dealer1@demo.test":  # its salespeople, who are assigned leads
                for login, name in SALESPEOPLE:
                    self._user(login, name, Role.PARTNER, dealer.partner)
        self.session.flush()  # partner ids, for the counters below
        for info in self.distributors + self.dealers:
            self.open[info.partner.id] = 0

    # --- leads

    def _leads(self) -> None:
        """Four months of leads, each taken through the lifecycle at its own past times."""
        rng = self.rng
        # More recent days get more leads (the campaigns grew the funnel), weekends fewer.
        days = list(range(HISTORY_DAYS))
        weights = [(1.0 + (HISTORY_DAYS - d) / 50.0)
                   * (0.45 if (self.now - timedelta(days=d)).weekday() >= 5 else 1.0)
                   for d in days]
        latest = self.now - timedelta(minutes=5)
        moments = []
        for _ in range(LEAD_COUNT - 6):
            day = rng.choices(days, weights)[0]
            midnight = (self.now - timedelta(days=day)).replace(hour=0, minute=0, second=0)
            # 13:00-02:00 UTC is office hours across the US time zones
            moment = midnight + timedelta(seconds=rng.randint(13 * 3600, 26 * 3600))
            if moment > latest:  # today's office hours are not over yet
                moment = latest - timedelta(seconds=rng.randint(0, 6 * 3600))
            moments.append(moment)
        # A few arrived in the last two hours: some of them are not routed yet.
        moments += [self.now - timedelta(minutes=7 + 19 * k) for k in range(6)]
        moments.sort()
        # Each lead's story runs through the lifecycle in memory (the offers of a lead this
        # transaction created are in hand, no query needed); a batch of them is then
        # written with a few bulk INSERTs per table.
        with self.session.no_autoflush:
            for start in range(0, len(moments), BATCH):
                for created in moments[start:start + BATCH]:
                    self._one_lead(created)
                self.session.flush()

    def _pick_home(self) -> tuple[Place, str, _PartnerInfo | None]:
        """Where the prospect is, what they want, and the partner territory that covers it."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.80:
            dealer = rng.choices(self.dealers, [d.weight for d in self.dealers])[0]
            return rng.choice(dealer.coverage), rng.choice(sorted(dealer.lines)), dealer
        if roll < 0.93:
            dist = rng.choice(self.distributors)
            return rng.choice(dist.coverage), rng.choice(sorted(dist.lines)), dist
        place = self.geo.place(rng.choice(OUTSIDE_ZIPS))
        line = rng.choices(("TRC", "MWR", "UTV"), (4, 3, 3))[0]
        fallback = next(d for d in self.distributors if _NATIONAL in d.rules)
        return place, line, fallback if line in fallback.lines else None

    def _campaign_and_source(self, created: datetime, line: str) -> tuple[Campaign | None,
                                                                           Source]:
        rng = self.rng
        running = [c for c in self.campaigns if c[1] <= created <= c[2]
                   and (c[3] is None or c[3] == line)]
        if running and rng.random() < 0.65:
            campaign, _, _, _, source = rng.choice(running)
            return campaign, self.sources[source]
        code = rng.choices([s[0] for s in SOURCES], SOURCE_WEIGHTS)[0]
        return None, self.sources[code]

    def _new_lead(self, created: datetime, place: Place, line: str) -> Lead:
        rng = self.rng
        self.serial += 1
        first, last = self._person()
        company = ""
        if rng.random() < 0.42:
            company = rng.choice(COMPANY_PATTERNS).format(last=last, place=rng.choice(PLACES))
        domain = rng.choice(("example.com", "example.net"))
        email = f"{first}.{last}{rng.randint(1, 99) if rng.random() < 0.4 else ''}@{domain}"
        digits = f"{rng.randint(100, 199):04d}"
        campaign, source = self._campaign_and_source(created, line)
        return Lead(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            first_name=first, last_name=last, company=company,
            email=email, email_normalized=email.lower(),
            phone=f"({place.area_code}) 555-{digits}",
            phone_normalized=f"+1{place.area_code}555{digits}",
            address=f"{rng.randint(10, 29999)} {rng.choice(STREETS)}"
                    + (f" {rng.randint(1, 400)}" if rng.random() < 0.5 else ""),
            city=place.city, region=f"US-{place.state}", postal_code=place.zip, country="US",
            latitude=place.lat, longitude=place.lon, product_line=self.lines[line],
            campaign=campaign, source=source,
            comments=rng.choice(COMMENTS[line]) if rng.random() < 0.6 else "",
            wants_literature=rng.random() < 0.55,
            external_id=f"WF-{self.serial:06d}" if source.code == "WEB" else None,
            created_at=created,
        )

    def _one_lead(self, created: datetime) -> None:
        rng, session = self.rng, self.session
        place, line, target = self._pick_home()
        lead = self._new_lead(created, place, line)
        device = {"WEB": "api", "LIST": "cli", "SHOW": "cli"}.get(lead.source.code, "web")
        qualified_at = created + timedelta(seconds=rng.randint(2, 20))
        # What the person sent decides the verdict, as on a real capture: the rules engine
        # scores and ranks every lead (so ranks always match the rules' thresholds).
        roll = rng.random()
        if roll < 0.11:
            self._unusable(lead)
        lead.answers = self._answers(ready=roll >= 0.30)
        lifecycle.capture(session, lead, Actor.system(device), now=created,
                          data={"source": lead.source.code})
        verdict = qualify_lead(session, lead, self.system, now=qualified_at, rules=self.rules)
        if verdict.outcome == "nurture":
            # Some raise their hand weeks later ("talk to a dealer now" in a nurture
            # email): hot, and routed at once.
            later = qualified_at + timedelta(days=rng.uniform(10, 60))
            raised = rng.random() < 0.18 and later < self.now - timedelta(hours=1)
            self._nurture(lead, qualified_at, later if raised else None)
            if raised:
                lead.engagements = (lead.engagements or 0) + 1
                qualify_lead(session, lead, self.system, now=later, hand_raised=True,
                             rules=self.rules)
                self._route(lead, place, line, target, later + timedelta(seconds=30))
            self._pack(lead, created)
            return
        if verdict.outcome != "qualified":
            return
        if self.now - created < timedelta(hours=2) and rng.random() < 0.5:
            self._pack(lead, created)
            return  # captured moments ago: the next routing run will place it
        self._route(lead, place, line, target, qualified_at + timedelta(seconds=40))
        self._pack(lead, created)

    # --- what the jobs did after a capture: nurture emails, literature packs

    def _campaign_look(self) -> None:
        """The running campaign's form in its own look: a logo, a green accent and its
        own wording (Capture → Logo, colour and wording), as a marketing team sets it up."""
        from portal.capture import branding

        for campaign, _, _, _, _ in self.campaigns:
            if not campaign.active or campaign.accent_color or campaign.logo_type:
                continue
            branding.save_brand(
                self.session, campaign, form_heading="",
                form_intro="0 % financing for 48 months on every compact tractor ordered "
                           "before the end of the season. Tell us what you need and the "
                           "authorised dealer for your area will call you with an offer.",
                thanks_text="Your dealer will call you within one working day with the "
                            "financing offer for your tractor.",
                accent_color="#2e7d32", logo=demo_logo())

    def _nurture_tracks(self) -> None:
        """A nurture track per product line, three emails each, unless the manufacturer
        has its own (then leads go where ``nurture.services.track_for`` would put them)."""
        session = self.session
        tracks = list(session.scalars(select(NurtureTrack).where(NurtureTrack.active)
                                      .order_by(NurtureTrack.id)))
        if not tracks:
            for code, name, _ in PRODUCT_LINES:
                track = NurtureTrack(name=f"{name}: not ready yet",
                                     product_line=self.lines[code],
                                     created_at=self.now - timedelta(days=HISTORY_DAYS + 14))
                session.add(track)
                for position, (delay, subject, body, label) in enumerate(
                        NURTURE_STEPS, start=1):
                    session.add(NurtureStep(
                        track=track, position=position, delay_days=delay,
                        subject=subject.format(line=name.lower()),
                        body=body.format(line=name.lower()),
                        link_url=f"https://www.example.com/{code.lower()}/{label[0]}",
                        link_label=label[1]))
                tracks.append(track)
            session.flush()
        fallback = next((t for t in tracks if t.product_line_id is None), None)
        for code, line in self.lines.items():
            track = next((t for t in tracks if t.product_line_id == line.id), fallback)
            if track is not None:
                steps = list(session.scalars(select(NurtureStep).where(
                    NurtureStep.track_id == track.id).order_by(NurtureStep.position)))
                self.tracks[code] = (track, steps)

    def _nurture(self, lead: Lead, qualified_at: datetime, raised_at: datetime | None) -> None:
        """The nurture sweep enrols the lead on its track within minutes; each email goes
        when due (``nurture.services.plan_due``) until now, or until the lead asked to talk
        to a dealer."""
        found = self.tracks.get(lead.product_line.code) if lead.product_line else None
        if found is None or not lead.email:
            return  # as nurture.services.enrol: no track fits, or no address to write to
        track, steps = found
        rng = self.jobs_rng
        enrolled = qualified_at + timedelta(minutes=rng.randint(1, 5))
        enrollment = NurtureEnrollment(lead_id=lead.id, track_id=track.id,
                                       enrolled_at=enrolled, status=EnrollmentStatus.ACTIVE,
                                       status_at=enrolled)
        self.session.add(enrollment)
        lifecycle.record_event(self.session, lead, "nurture_enrolled", Actor.system("nurture"),
                               now=enrolled, data={"track": track.name, "track_id": track.id})
        until = raised_at or self.now
        due = enrolled + timedelta(days=steps[0].delay_days) if steps else enrolled
        enrollment.next_step, enrollment.next_due_at = 1, due
        for index, step in enumerate(steps):
            if due > until:
                break
            sent = due + timedelta(seconds=rng.randint(30, 240))
            if sent > until:
                break
            self.session.add(NurtureSend(enrollment=enrollment, step=step,
                                         status="sent", attempts=1, next_attempt_at=due,
                                         sent_at=sent))
            following = steps[index + 1] if index + 1 < len(steps) else None
            if following is None:
                enrollment.next_step = step.position + 1
                enrollment.status, enrollment.status_at = EnrollmentStatus.FINISHED, due
                enrollment.next_due_at = None
                break
            enrollment.next_step = following.position
            due = due + timedelta(days=following.delay_days)
            enrollment.next_due_at = due
        if raised_at is not None:
            enrollment.hand_raised_at = raised_at
            if enrollment.status == EnrollmentStatus.ACTIVE:
                enrollment.status, enrollment.status_at = EnrollmentStatus.HAND_RAISED, raised_at
                enrollment.next_due_at = None

    def _pack(self, lead: Lead, created: datetime) -> None:
        """The literature pack a lead asked for, emailed by the worker a minute or two
        after the capture (``capture.services`` requests it; ``fulfilment.services``
        records it sent), naming the partner it was offered to by then."""
        if (not lead.wants_literature or not lead.email
                or lead.status == LeadStatus.DISQUALIFIED):
            return
        sent = created + timedelta(seconds=self.jobs_rng.randint(45, 240))
        if sent > self.now:
            return  # still with the worker
        offered = self.first_offer.get(lead.id)
        partner_id = offered[0] if offered and offered[1] <= sent else None
        pack = Fulfilment(
            request_key=f"lead:{lead.id}:line:{lead.product_line.id}", lead_id=lead.id,
            product_line_id=lead.product_line.id, reason="captured", status="sent",
            delivery="attachment", attempts=1, requested_at=created, next_attempt_at=created,
            sent_at=sent, sent_to=lead.email, partner_id=partner_id, contents=[])
        self.session.add(pack)
        lifecycle.record_event(self.session, lead, "literature_sent", Actor.system("job"),
                               now=sent, partner_id=partner_id,
                               data={"channel": "email", "delivery": "attachment"})

    def _unusable(self, lead: Lead) -> None:
        """An inquiry the rules turn away: a test, a throwaway address, no way to reach."""
        kind = self.rng.choice(("test", "throwaway", "unreachable"))
        if kind == "test":
            lead.first_name, lead.last_name = "Test", self.rng.choice(("Test", "Asdf", "User"))
        elif kind == "throwaway":
            lead.email = lead.email.split("@")[0] + "@mailinator.com"
            lead.email_normalized = lead.email.lower()
        else:
            lead.email = lead.email_normalized = lead.phone = lead.phone_normalized = ""

    def _answers(self, *, ready: bool) -> dict[str, str]:
        rng = self.rng
        if ready:
            timeline = rng.choices(("now", "3_months", "6_months"), (5, 4, 1))[0]
            budget = rng.choices(("approved", "planned", "unknown"), (6, 3, 1))[0]
        else:
            timeline = rng.choices(("12_months", "researching", "6_months"), (4, 5, 1))[0]
            budget = rng.choices(("none", "unknown", "planned"), (4, 4, 2))[0]
        role = rng.choices(("decision_maker", "influencer", "user", "other"), (6, 2, 2, 1))[0]
        return {"timeline": timeline, "budget": budget, "role": role}

    # --- routing and the partner's work

    def _has_room(self, info: _PartnerInfo) -> bool:
        return info.capacity is None or self.open[info.partner.id] < info.capacity

    def _alternatives(self, place: Place, line: str, exclude: set[int]) -> list[_PartnerInfo]:
        """Other partners whose territory covers ``place``, sell ``line`` and have room."""
        found = [d for d in self.dealers
                 if d.partner.id not in exclude and line in d.lines and self._has_room(d)
                 and d.place.zip != PAUSED_DEALER and place.zip in d.zips]
        for dist in self.distributors:
            if (dist.partner.id not in exclude and line in dist.lines
                    and (TerritoryRule("region", f"US-{place.state}") in dist.rules
                         or _NATIONAL in dist.rules)):
                found.append(dist)
        return found

    def _offer(self, lead: Lead, info: _PartnerInfo, when: datetime, place: Place,
               method: str = "rule") -> None:
        rule = next((r for r, zips in info.rule_zips.items() if place.zip in zips),
                    _NATIONAL)
        summary = (f"{info.partner.name}: territory {rule} covers {place.zip} "
                   f"({place.city}, {place.state}); sells {lead.product_line.name.lower()}")
        lifecycle.offer(self.session, lead, info.partner, self.system, method=method,
                        explanation={"summary": summary, "partner": info.partner.code,
                                     "rule": str(rule)},
                        now=when)
        self.open[info.partner.id] += 1
        self.first_offer.setdefault(lead.id, (info.partner.id, when))

    def _route(self, lead: Lead, place: Place, line: str, target: _PartnerInfo | None,
               when: datetime) -> None:
        rng = self.rng
        if target is not None and target.place.zip == PAUSED_DEALER and (
                self.now - when < timedelta(days=30)):
            target = None  # paused for the last month: its area goes to the others
        if target is None or not self._has_room(target) or line not in target.lines:
            options = self._alternatives(place, line, set())
            target = options[0] if options else None
        if target is None:
            lifecycle.mark_unassigned(
                self.session, lead, self.system, now=when,
                explanation={"summary": f"No partner sells {self.lines[line].name.lower()} at "
                                        f"{place.zip} ({place.city}, {place.state})"},
            )
            # A manager places about a third of them by hand within a few days.
            later = when + timedelta(hours=rng.uniform(4, 72))
            if rng.random() < 0.35 and later < self.now:
                nearest = min(
                    (d for d in self.dealers if line in d.lines and self._has_room(d)
                     and d.place.zip != PAUSED_DEALER),
                    key=lambda d: distance_km(d.place.point, place.point),
                )
                km = distance_km(nearest.place.point, place.point)
                # The story picks an eligible dealer from its own counts; the rows' counters
                # are written in bulk and not read back, so the check is the story's.
                lifecycle.reassign(self.session, lead, nearest.partner, self.manager_actor,
                                   reason=f"Placed by hand: nearest {line} dealer, {km:.0f} km; "
                                          "the customer will travel",
                                   override=True, now=later)
                self.open[nearest.partner.id] += 1
                self._respond(lead, nearest, later, place, tries=1)
            return
        self._offer(lead, target, when, place)
        self._respond(lead, target, when, place, tries=1)

    @property
    def manager_actor(self) -> Actor:
        assert self.manager is not None
        return self.manager

    def _partner_actor(self, info: _PartnerInfo) -> Actor:
        assert info.actor is not None
        device = self.rng.choices(("web", "api", f"sync:{info.partner.code.lower()}-tablet"),
                                  (6, 1, 3))[0]
        return Actor(user=info.actor.user, device=device, partner_id=info.partner.id)

    def _respond(self, lead: Lead, info: _PartnerInfo, offered_at: datetime, place: Place,
                 tries: int) -> None:
        """What the partner did with the offer, up to now."""
        rng, session = self.rng, self.session
        line = lead.product_line.code
        if info.partner.is_distributor:
            forward_at: datetime | None = None
            if info.partner.forwarding == "auto":
                forward_at, actor, why = (offered_at + timedelta(seconds=1), self.system,
                                          "auto-forwarded to the nearest dealer")
            elif rng.random() < 0.7:
                forward_at, actor, why = (offered_at + timedelta(hours=rng.uniform(0.5, 30)),
                                          self._partner_actor(info),
                                          "closest dealer to the customer")
            if forward_at is not None and forward_at < self.now:
                dealers = [d for d in info.dealers if line in d.lines and self._has_room(d)
                           and d.place.zip != PAUSED_DEALER]
                if dealers:
                    dealer = min(dealers, key=lambda d: distance_km(d.place.point, place.point))
                    self._forward(lead, info, dealer, forward_at, actor, why, place)
                    self._respond(lead, dealer, forward_at, place, tries=3)
                    return
        roll = rng.random()
        if roll < 0.07 and tries < 3:
            when = offered_at + timedelta(hours=rng.uniform(0.3, 20))
            if when >= self.now:
                return
            reason = (rng.choice(DECLINE_FREE_TEXT) if rng.random() < 0.25
                      else rng.choice(DECLINE_CHOICES))
            lifecycle.decline(session, lead, self._partner_actor(info), reason=reason, now=when)
            self.open[info.partner.id] -= 1
            self._reroute(lead, info, when, place, tries)
            return
        if roll < 0.12 and tries < 3:
            when = offered_at + lifecycle.accept_sla(info.partner)
            if when >= self.now:
                return
            lifecycle.expire(session, lead, now=when)
            self.open[info.partner.id] -= 1
            self._reroute(lead, info, when, place, tries)
            return
        accepted_at = offered_at + timedelta(hours=min(23.0, rng.lognormvariate(1.1, 0.9)))
        if accepted_at >= self.now:
            return
        lifecycle.accept(session, lead, self._partner_actor(info), now=accepted_at)
        self._work(lead, info, accepted_at, place)

    def _reroute(self, lead: Lead, previous: _PartnerInfo, when: datetime, place: Place,
                 tries: int) -> None:
        if self.now - when < timedelta(hours=2):
            return  # declined moments ago: waits in ``qualified`` for the next routing run
        options = self._alternatives(place, lead.product_line.code, {previous.partner.id})
        if not options:
            lifecycle.mark_unassigned(
                self.session, lead, self.system, now=when + timedelta(minutes=1),
                explanation={"summary": f"{previous.partner.name} gave it back; no other "
                                        f"partner covers {place.zip} with room"},
            )
            return
        target = options[0]
        at = when + timedelta(minutes=self.rng.randint(1, 15))
        self._offer(lead, target, at, place)
        self._respond(lead, target, at, place, tries + 1)

    def _forward(self, lead: Lead, dist: _PartnerInfo, dealer: _PartnerInfo, when: datetime,
                 actor: Actor, reason: str, place: Place) -> None:
        km = distance_km(dealer.place.point, place.point)
        lifecycle.forward(self.session, lead, dealer.partner, actor, reason=reason, now=when,
                          explanation={"summary": f"{dist.partner.name} passed it to "
                                                  f"{dealer.partner.name}, {km:.0f} km "
                                                  f"from {place.city}"})
        self.open[dist.partner.id] -= 1
        self.open[dealer.partner.id] += 1

    def _work(self, lead: Lead, info: _PartnerInfo, accepted_at: datetime,
              place: Place) -> None:
        """Contact, appointment, quote and an outcome, each only if its time has come."""
        rng, session = self.rng, self.session
        line = lead.product_line.code
        fate = rng.choices(("won", "lost", "no_interest", "stalled"), (26, 34, 20, 20))[0]
        if rng.random() < 0.02 and accepted_at + timedelta(days=2) < self.now:
            manager = self.manager_actor
            lifecycle.disqualify(session, lead, manager, reason="duplicate of an existing lead",
                                 now=accepted_at + timedelta(days=rng.uniform(0.5, 2)))
            self.open[info.partner.id] -= 1
            return
        when = accepted_at + timedelta(hours=rng.uniform(2, 48))
        if rng.random() < 0.02 and not info.partner.is_distributor and when < self.now:
            others = [d for d in self._alternatives(place, line, {info.partner.id})
                      if not d.partner.is_distributor]
            if others:
                lifecycle.reassign(session, lead, others[0].partner, self.manager_actor,
                                   reason=rng.choice(REASSIGN_REASONS), override=True,
                                   now=when)
                self.open[info.partner.id] -= 1
                self.open[others[0].partner.id] += 1
                self._respond(lead, others[0], when, place, tries=3)
                return
        low, high = LINE_PRICES[line]
        price = Decimal(rng.randrange(low, high, 50))
        steps: list[tuple[str, dict[str, Any]]] = []
        if fate != "stalled" or rng.random() < 0.6:
            steps.append(("contacted", {"channel": rng.choices(
                ("phone", "email", "visit", "text"), (6, 2, 1, 1))[0]}))
        if fate == "won" or (fate == "lost" and rng.random() < 0.7) or (
                fate == "stalled" and steps and rng.random() < 0.4):
            steps.append(("appointment", {}))
        if fate == "won" or (fate == "lost" and rng.random() < 0.6) or (
                fate == "stalled" and len(steps) == 2 and rng.random() < 0.5):
            steps.append(("quoted", {"amount": str(price)}))
        when = accepted_at
        actor = self._partner_actor(info)
        for stage, data in steps:
            gap = (timedelta(hours=rng.expovariate(1 / 20)) if stage == "contacted"
                   else timedelta(days=rng.uniform(1, 9)))
            when += gap
            if when >= self.now:
                return
            if stage == "appointment":
                # A time of day too (9:00 to 16:30, from the moment it was set, so the
                # story's random draws stay as they were), in the portal's zone.
                data = {"date": (when + timedelta(days=rng.randint(1, 10))).date().isoformat(),
                        "time": f"{9 + when.hour % 8:02d}:{when.minute // 30 * 30:02d}",
                        "time_zone": localtime.portal_zone()}
            lifecycle.advance(session, lead, stage, actor, data=data, now=when)
            if rng.random() < 0.12:
                note_at = when + timedelta(hours=rng.uniform(1, 30))
                if note_at < self.now:
                    lifecycle.add_note(session, lead, actor, text=rng.choice(NOTES),
                                       now=note_at)
                    when = note_at
        if fate == "stalled":
            return  # no outcome reported: overdue once 45 days have passed
        when += timedelta(days=rng.uniform(2, 20))
        if when >= self.now:
            return
        self._close(lead, info, fate, price, when, actor)
        # Now and then a manager re-opens a closed lead, and the dealer reports again.
        reopen_at = when + timedelta(days=rng.uniform(1, 5))
        if rng.random() < 0.015 and reopen_at + timedelta(days=3) < self.now:
            lifecycle.reopen(session, lead, self.manager_actor, reason=rng.choice(REOPEN_REASONS),
                             now=reopen_at)
            self.open[info.partner.id] += 1
            again = rng.choice(("won", "lost", "no_interest"))
            self._close(lead, info, again, price, reopen_at + timedelta(days=rng.uniform(1, 3)),
                        actor)

    def _close(self, lead: Lead, info: _PartnerInfo, fate: str, price: Decimal,
               when: datetime, actor: Actor) -> None:
        rng = self.rng
        data: dict[str, Any] = {}
        if fate == "won":
            discount = Decimal(rng.randint(0, 8)) / Decimal(100)
            amount = max(Decimal(8000), (price * (1 - discount)).quantize(Decimal("1")))
            data = {"amount": str(amount), "date": when.date().isoformat()}
        elif fate == "lost":
            if rng.random() < 0.6:
                name = (rng.choice(TYPED_COMPETITORS) if rng.random() < 0.15
                        else rng.choice(self.competitors))
                if rng.random() < 0.2:
                    name = name.lower()  # partners type names any which way
                data = {"reason": "competitor", "competitor": name}
            else:
                data = {"reason": rng.choice(("price", "timing", "no_budget", "no_response",
                                              "other"))}
        lifecycle.close(self.session, lead, fate, actor, data=data, now=when)
        self.open[info.partner.id] -= 1
