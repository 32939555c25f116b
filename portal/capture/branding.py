"""A campaign's public form in the campaign's own look: logo, accent colour and wording.

The Content-Security-Policy allows no inline style or script, so the look is applied by
a stylesheet the portal serves per campaign (``brand_css``: two CSS custom properties
from a colour checked to be ``#rrggbb``) and a logo the portal serves itself (checked to
be a real PNG, JPEG, GIF or WebP image of bounded size, never SVG, which can carry
script).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from portal.core.checks import clean_text
from portal.core.errors import InvalidInput
from portal.core.models import Campaign, utcnow

#: the largest logo accepted, in bytes (a header logo needs far less)
LOGO_MAX_BYTES = 300 * 1024
#: the largest logo accepted, in pixels either way
LOGO_MAX_PIXELS = 2000
#: the image formats a browser shows everywhere, by Pillow's name → media type
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif",
              "WEBP": "image/webp"}
#: the most characters of each wording
WORDING_LIMITS = {"form_heading": 160, "form_intro": 1000, "thanks_text": 1000}

_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


@dataclass(frozen=True)
class Logo:
    """An uploaded logo that passed the checks."""

    data: bytes
    media_type: str


def clean_accent(raw: str) -> str:
    """``raw`` as ``#rrggbb`` (lower case; ``#abc`` is widened), "" for none; else
    InvalidInput on ``accent_color``."""
    value = clean_text(raw, "accent_color").strip()
    if not value:
        return ""
    match = _HEX.fullmatch(value)
    if match is None:
        message = "Enter a colour as # and six hex digits, e.g. #0b5cad."
        raise InvalidInput(message, {"accent_color": message})
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return f"#{digits}"


def check_logo(data: bytes) -> Logo:
    """``data`` when it is one PNG, JPEG, GIF or WebP image within the limits; else
    InvalidInput on ``logo`` saying what to upload instead."""
    if not data:
        raise InvalidInput("The logo file is empty.", {"logo": "The file is empty."})
    if len(data) > LOGO_MAX_BYTES:
        message = (f"The logo is larger than {LOGO_MAX_BYTES // 1024} KB; upload one of "
                   f"at most {LOGO_MAX_BYTES // 1024} KB.")
        raise InvalidInput(message, {"logo": message})
    wrong = "Upload the logo as a PNG, JPEG, GIF or WebP image."
    try:
        with warnings.catch_warnings():
            # A decompression bomb warns first: refused like any other wrong file.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                width, height = image.size
                image.verify()  # reads the whole file: a truncated or forged one fails
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidInput(wrong, {"logo": wrong}) from None
    if kind not in LOGO_TYPES:
        raise InvalidInput(wrong, {"logo": wrong})
    if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
        message = (f"The logo is {width}×{height} pixels; upload one of at most "
                   f"{LOGO_MAX_PIXELS}×{LOGO_MAX_PIXELS}.")
        raise InvalidInput(message, {"logo": message})
    return Logo(data=data, media_type=LOGO_TYPES[kind])


def save_brand(session: Session, campaign: Campaign, *, form_heading: str, form_intro: str,
               thanks_text: str, accent_color: str, logo: bytes | None = None,
               remove_logo: bool = False) -> Campaign:
    """Check and store the form's look and wording for ``campaign``; all or nothing."""
    errors: dict[str, str] = {}
    wording: dict[str, str] = {}
    for name, raw in (("form_heading", form_heading), ("form_intro", form_intro),
                      ("thanks_text", thanks_text)):
        try:
            text = clean_text(raw, name).strip()
        except InvalidInput as error:
            errors.update(error.fields)
            continue
        if name == "form_heading":
            text = " ".join(text.split())  # one line: it is a heading
        if len(text) > WORDING_LIMITS[name]:
            errors[name] = f"Use at most {WORDING_LIMITS[name]} characters."
        wording[name] = text
    accent = ""
    try:
        accent = clean_accent(accent_color)
    except InvalidInput as error:
        errors.update(error.fields)
    checked = None
    if logo and not remove_logo:
        try:
            checked = check_logo(logo)
        except InvalidInput as error:
            errors.update(error.fields)
    if errors:
        raise InvalidInput("Please correct the fields marked below.", errors)
    for name, text in wording.items():
        setattr(campaign, name, text)
    campaign.accent_color = accent
    if remove_logo:
        campaign.logo, campaign.logo_type = None, ""
    elif checked is not None:
        campaign.logo, campaign.logo_type = checked.data, checked.media_type
    campaign.brand_updated_at = utcnow()
    session.flush()
    return campaign


def _luminance(colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    channels = []
    for index in (1, 3, 5):
        value = int(colour[index:index + 2], 16) / 255
        channels.append(value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def ink_on(colour: str) -> str:
    """White or near-black, whichever reads better on ``colour`` (WCAG contrast)."""
    light = _luminance(colour)
    on_white = 1.05 / (light + 0.05)
    on_black = (light + 0.05) / (_luminance("#1c2430") + 0.05)
    return "#ffffff" if on_white >= on_black else "#1c2430"


def brand_css(campaign: Campaign) -> str:
    """The campaign's stylesheet: the accent and the ink that reads on it, as the custom
    properties portal.css builds buttons, links and the top bar from."""
    if not campaign.accent_color:
        return "/* no accent colour set: the portal's own */\n"
    # The value was checked to be #rrggbb when it was saved; checked again, as it is
    # written into CSS.
    accent = clean_accent(campaign.accent_color)
    ink = ink_on(accent)
    return (f".branded {{ --brand: {accent}; --brand-ink: {ink}; }}\n"
            f".branded .topbar {{ background: {accent}; color: {ink}; }}\n"
            f".branded .topbar a {{ color: {ink}; }}\n")
