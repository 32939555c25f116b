"""Outgoing email: SMTP when ``MAIL_SERVER`` is set, else files in ``instance/mail-sink/``."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from flask import current_app


def _clean_header(value: str) -> str:
    # Names end up in headers: a CR or LF there would let input add headers of its own.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_message(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> EmailMessage:
    """An email with a text body, optional HTML alternative and attachments."""
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = _clean_header(to)
    message["Subject"] = _clean_header(subject)
    message["Message-ID"] = make_msgid(domain="portal.localhost")
    message["Date"] = formatdate(usegmt=True)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, payload, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message


def deliver(message: EmailMessage) -> None:
    """Send through the configured SMTP server, or write to the local sink in development."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        sink = Path(config["MAIL_SINK_DIR"])
        sink.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (sink / f"{stamp}.eml").write_bytes(bytes(message))
        current_app.logger.info("mail to %s written to %s", message["To"], sink)
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)
