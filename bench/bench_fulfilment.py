"""Benchmark literature packs: one pack's build time, and packs per minute with the worker.

    python bench/bench_fulfilment.py [--leads 1000] [--workers 2] [--render-processes 2]
                                     [--samples 60]

Everything real: a fresh SQLite database migrated to heads, three 10-page brochures
uploaded through the library service (checked like any upload), a real SMTP server
(aiosmtpd, counting what arrives), and the real Huey consumer in its own process
(``--run-worker``, what ``flask --app portal worker`` runs) with WeasyPrint children.

Part 1 times ``services.build_pack`` (cover letter render + join with the cached
literature) for one lead; part 2 writes ``--leads`` pack requests in one transaction (the
commit nudges one ``send_pack`` job each onto the SQLite queue), starts the worker and
waits until every row is ``sent``; memory is sampled from /proc every 0.2 s for the
worker and its render children.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_config(tmp: Path, smtp_port: int, render_processes: int) -> dict[str, Any]:
    """The app settings both this process and the worker process use."""
    return {
        "SECRET_KEY": "bench-secret-not-for-production",
        "DATABASE_URL": f"sqlite:///{tmp / 'portal.db'}",
        "HUEY_SQLITE_PATH": str(tmp / "huey.db"),
        "LITERATURE_DIR": str(tmp / "literature"),
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "PDF_RENDER_PROCESSES": render_processes,
        "PORTAL_BASE_URL": "http://portal.bench",
    }


def run_worker(config_json: str, workers: int) -> None:
    """The worker process: the app's Huey consumer, as ``flask worker`` runs it."""
    from portal import create_app
    from portal.core.jobs import jobs

    app = create_app(json.loads(config_json))
    with app.app_context():
        consumer = jobs().huey.create_consumer(workers=workers, worker_type="thread",
                                               periodic=False)
        consumer.run()


def brochure(title: str, pages: int) -> bytes:
    """A brochure-like PDF: a heading, body text and a coloured panel on every page."""
    from weasyprint import HTML

    text = ("The loader lifts two thousand pounds to full height with a quick-attach "
            "hitch, two-year warranty and dealer service in every county. ") * 12
    body = "".join(
        f'<section style="page-break-after: always"><h1>{title}</h1><h2>Page {n}</h2>'
        f'<div style="height: 2in; background: #0b5cad"></div><p>{text}</p></section>'
        for n in range(1, pages + 1))
    return HTML(string=f"<html><body>{body}</body></html>").write_pdf()  # type: ignore[no-any-return]


class Counting:
    """SMTP handler: counts messages and bytes, keeps nothing."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.count += 1
            self.bytes += len(envelope.original_content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proc_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="worker threads")
    parser.add_argument("--render-processes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--run-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_worker:
        run_worker(args.run_worker, args.workers)
        return

    from aiosmtpd.controller import Controller
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from portal import create_app
    from portal.core import lifecycle
    from portal.core.models import Fulfilment, Lead, Partner, ProductLine
    from portal.extensions import db
    from portal.fulfilment import library, pdf, services

    tmp = Path(tempfile.mkdtemp(prefix="bench-fulfilment-"))
    handler = Counting()
    smtp_port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    config = make_config(tmp, smtp_port, args.render_processes)
    app = create_app(config)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, data in {tmp}")

    with app.app_context():
        upgrade(revision="heads")
        session = db.session
        line = ProductLine(code="TRC", name="Compact tractors")
        dealer = Partner(code="D1", name="Prairie Tractor & Supply", kind="dealer",
                         email="sales@prairie.test", phone="+1 641 555 0100",
                         address="400 Main St", city="Mason City", region="US-IA",
                         postal_code="50401")
        session.add_all([line, dealer])
        session.flush()
        for n, title in enumerate(("Tractor Overview", "Loader Specs", "Financing Guide")):
            item = library.save_item(session, None, title=title, product_line_id=line.id,
                                     kind="brochure", position=n, active=True)
            library.upload_version(session, item, data=brochure(title, 10),
                                   filename=f"{n}.pdf", user=None, activate=True)
        session.commit()

        # --- part 1: one pack ----------------------------------------------------------
        lead = Lead(first_name="Dana", last_name="Miller", company="Miller Farms",
                    email="dana@example.com", postal_code="50401", product_line=line,
                    assigned_partner=dealer, wants_literature=True)
        lifecycle.capture(session, lead, lifecycle.Actor.system("bench"))
        row = services.request_pack(session, lead)
        session.info.pop("portal.fulfilment.nudge", None)  # part 1 builds by hand
        session.commit()
        data = services.gather(session, row.id, services.utcnow())
        session.commit()
        started = time.perf_counter()
        first = services.build_pack(data)
        cold = time.perf_counter() - started
        builds, covers, joins = [], [], []
        options = library.render_options()
        for _ in range(args.samples):
            t0 = time.perf_counter()
            pack = services.build_pack(data)
            builds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            cover = pdf.render_pdf(services.render_letter_html(data.letter),
                                   css=library.pack_css(), **options)  # type: ignore[arg-type]
            covers.append(time.perf_counter() - t0)
            names = tuple(part["stored_name"] for part in data.literature)
            literature = pdf.literature_cache.get(names, lambda: b"")
            t0 = time.perf_counter()
            pdf.join_pdfs([cover, literature])
            joins.append(time.perf_counter() - t0)
        pages = pdf.page_count(pack)
        print("\nPart 1: one pack (cover letter render + join), three 10-page brochures")
        print(f"  pack: {pages} pages, {len(first) / 1024:.0f} KB")
        print(f"  first build (spawns the render child, joins and caches the literature): "
              f"{cold * 1000:.0f} ms")
        print(f"  build_pack over {args.samples}: median {statistics.median(builds) * 1000:.1f}"
              f" ms, p95 {percentile(builds, 0.95) * 1000:.1f} ms")
        print(f"    of which cover letter render: median "
              f"{statistics.median(covers) * 1000:.1f} ms; join: median "
              f"{statistics.median(joins) * 1000:.1f} ms")
        pdf.shutdown()

        # --- part 2: the worker --------------------------------------------------------
        session.commit()
        t0 = time.perf_counter()
        for n in range(args.leads):
            lead = Lead(first_name="Pat", last_name=f"Prospect{n}", company=f"Farm {n}",
                        email=f"pat{n}@example.com", postal_code="50401", product_line=line,
                        assigned_partner=dealer, wants_literature=True)
            lifecycle.capture(session, lead, lifecycle.Actor.system("bench"))
            services.request_pack(session, lead)
        session.commit()  # one send_pack nudge per row goes onto the queue here
        print(f"\nPart 2: {args.leads} pack requests written and queued in "
              f"{time.perf_counter() - t0:.1f} s")

    command = [sys.executable, __file__, "--workers", str(args.workers),
               "--run-worker", json.dumps(config)]
    worker = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    started = time.perf_counter()
    peak_worker = peak_total = 0
    child_peaks: dict[int, int] = {}
    sent = 0
    try:
        with app.app_context():
            while True:
                peak_worker = max(peak_worker, proc_kb(worker.pid, "VmHWM"))
                total = proc_kb(worker.pid, "VmRSS")
                for child in children(worker.pid):
                    rss = proc_kb(child, "VmRSS")
                    total += rss
                    child_peaks[child] = max(child_peaks.get(child, 0),
                                             proc_kb(child, "VmHWM"))
                peak_total = max(peak_total, total)
                sent = db.session.scalar(select(func.count()).select_from(Fulfilment)
                                         .where(Fulfilment.status == "sent")) or 0
                db.session.rollback()
                if sent >= args.leads or worker.poll() is not None:
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            # Part 1's row stays pending on purpose (built by hand, never queued).
            failed = (db.session.scalar(select(func.count()).select_from(Fulfilment)
                                        .where(Fulfilment.status != "sent")) or 0) - 1
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        controller.stop()
    print(f"  worker: {args.workers} threads, {args.render_processes} render processes")
    print(f"  sent {sent} packs in {elapsed:.1f} s "
          f"(from worker start, includes its start-up): "
          f"{sent / elapsed * 60:.0f} packs/minute; not sent: {failed}")
    print(f"  SMTP server received {handler.count} messages, "
          f"{handler.bytes / 1_048_576:.1f} MB")
    print(f"  peak memory: worker process {peak_worker / 1024:.0f} MB (VmHWM); "
          f"render children up to {max(child_peaks.values(), default=0) / 1024:.0f} MB each; "
          f"worker + children together {peak_total / 1024:.0f} MB (sampled RSS)")


if __name__ == "__main__":
    main()
