"""Time the main pages on PostgreSQL with generic plans and with custom plans only.

    python bench/compare_plans.py [--database portal_bench_inbox] [--warm 10] [--timed 5]

Requests that only read end with COMMIT, so psycopg keeps their statements prepared and
PostgreSQL settles on a generic plan for each after five executions. A generic plan does
not know the parameters (a busy dealer, a rare status) and can be far worse than the
plan made for them: this runs each page ``--warm`` times, then times ``--timed`` more,
once as configured and once with ``plan_cache_mode=force_custom_plan``, and marks the
pages that generic plans make slower, with their statements.

Runs on the database ``bench/bench_inbox.py --backend postgresql --reuse`` keeps (its
dealer; a manager user is added to it).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from bench_inbox import EMAIL, KEPT_DATABASE, PASSWORD  # noqa: E402
from seed import PG_SERVER  # noqa: E402

MANAGER = "manager@bench.test"
CUSTOM_ONLY = {"options": "-c plan_cache_mode=force_custom_plan"}


def app_for(url: str) -> Any:
    from portal import create_app

    return create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "HUEY_IMMEDIATE": True})


def pages(url: str) -> dict[str, list[str]]:
    """The pages to time, per user: the dealer's workspace and the managers' lists."""
    from portal.core.models import Lead, Partner, User
    from portal.extensions import db

    app = app_for(url)
    with app.app_context():
        session = db.session
        if session.scalar(sa.select(User.id).where(User.email == MANAGER)) is None:
            manager = User(email=MANAGER, name="Bench manager", role="manager")
            manager.set_password(PASSWORD)
            session.add(manager)
            session.commit()
        dealer = session.scalar(sa.select(User.partner_id).where(User.email == EMAIL))
        code = session.scalar(sa.select(Partner.code).where(Partner.id == dealer))
        worked = session.scalar(sa.select(Lead.id).where(
            Lead.assigned_partner_id == dealer, Lead.status == "quoted").limit(1))
        queued = session.scalar(sa.select(Lead.id).where(Lead.status == "unassigned").limit(1))
        db.engine.dispose()
    return {
        EMAIL: ["/", "/leads/?tab=new", "/leads/?tab=contact", "/leads/?tab=open",
                "/leads/?tab=overdue", "/leads/?tab=closed", "/leads/?tab=closed&page=40",
                "/leads/?tab=open&q=Lead4", "/leads/?tab=closed&q=Lead4",
                "/leads/?tab=open&rank=hot", f"/leads/{worked}", "/leads/settings"],
        MANAGER: ["/", "/leads/search", "/leads/search?status=unassigned",
                  "/leads/search?status=offered", "/leads/search?rank=hot",
                  f"/leads/search?partner={code}", "/leads/search?overdue=1",
                  "/leads/search?q=smith", "/leads/search?q=Lead4", "/leads/search?q=dealer.test",
                  "/leads/search?q=50&status=won", "/leads/queue",
                  f"/leads/partners/{code}", f"/manage/partners/{code}", "/manage/partners",
                  f"/leads/{queued}", "/manage/"],
    }


def sign_in(client: Any, email: str) -> None:
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    answer = client.post("/auth/login", data={"email": email, "password": PASSWORD,
                                              "csrf_token": token.group(1)})
    assert answer.status_code == 303, answer.status_code


def timed(url: str, by_user: dict[str, list[str]], warm: int, runs: int
          ) -> dict[tuple[str, str], tuple[float, dict[str, float]]]:
    """Per (user, page): ms per request after warming up, and ms per statement."""
    from portal.extensions import db

    app = app_for(url)
    with app.app_context():
        engine = db.engine
    spent: dict[str, float] = defaultdict(float)

    def before(conn: Any, *_: Any) -> None:
        conn.info["bench.t0"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        spent[" ".join(statement.split())[:90]] += time.perf_counter() - conn.info["bench.t0"]

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    results = {}
    for email, paths in by_user.items():
        client = app.test_client()
        sign_in(client, email)
        for path in paths:
            for _ in range(warm):
                assert client.get(path).status_code == 200, path
            spent.clear()
            started = time.perf_counter()
            for _ in range(runs):
                assert client.get(path).status_code == 200, path
            ms = (time.perf_counter() - started) / runs * 1000
            results[(email, path)] = (ms, {k: v / runs * 1000 for k, v in spent.items()})
    with app.app_context():
        db.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=KEPT_DATABASE)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--timed", type=int, default=5)
    args = parser.parse_args()
    server = sa.make_url(PG_SERVER).set(database=args.database)
    url = server.render_as_string(hide_password=False)
    custom_url = server.update_query_dict(CUSTOM_ONLY).render_as_string(hide_password=False)
    by_user = pages(url)
    generic = timed(url, by_user, args.warm, args.timed)
    custom = timed(custom_url, by_user, args.warm, args.timed)
    print("| user | page | ms a request (as configured) | ms (custom plans only) | |")
    print("|---|---|---|---|---|")
    slower = []
    for key, (ms, statements) in generic.items():
        custom_ms, custom_statements = custom[key]
        # By the statements' own time: the page's total also holds the rendering's noise.
        mine, theirs = sum(statements.values()), sum(custom_statements.values())
        worse = mine > theirs * 1.3 and mine - theirs > 0.5
        print(f"| {key[0].split('@')[0]} | `{key[1]}` | {ms:.2f} | {custom_ms:.2f} | "
              f"{'generic plan slower' if worse else ''} |")
        if worse:
            slower.append((key, statements, custom_statements))
    for key, statements, custom_statements in slower:
        print(f"\n{key[1]} ({key[0]}), ms per statement as configured / custom only:")
        for statement, ms in sorted(statements.items(), key=lambda kv: -kv[1]):
            print(f"  {ms:8.2f} {custom_statements.get(statement, 0):8.2f}  {statement}")


if __name__ == "__main__":
    main()
