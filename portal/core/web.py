"""Request plumbing shared by every page: the transaction boundary, errors, helpers."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import IO, Any, TypeVar
from urllib.parse import parse_qsl

import sqlalchemy as sa
from flask import (
    Flask,
    Request,
    Response,
    abort,
    has_request_context,
    jsonify,
    render_template,
    request,
)
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.formparser import FormDataParser
from werkzeug.middleware.proxy_fix import ProxyFix

from portal.core.database import reads_only, unavailable
from portal.core.errors import DomainError
from portal.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


class _FormDataParser(FormDataParser):
    """Werkzeug's, but bytes of a urlencoded form that are not UTF-8 become U+FFFD, as they
    do in a multipart form, rather than staying percent-escaped (``%ED%A0%80`` stored as
    if typed): the text rule (``checks.text_problem``) then refuses them on their field."""

    def _parse_urlencoded(self, stream: IO[bytes], mimetype: str,
                          content_length: int | None, options: dict[str, str]) -> Any:
        items = parse_qsl(stream.read().decode("utf-8", "replace"), keep_blank_values=True,
                          errors="replace")
        return stream, self.cls(items), self.cls()


class PortalRequest(Request):
    """The portal's request: forms decoded as above."""

    form_data_parser_class = _FormDataParser


class TrustedProxies:
    """Werkzeug's ProxyFix for ``TRUSTED_PROXIES`` hops, read from the config per request.

    With 0 (the default) X-Forwarded-For is ignored: anyone could name any address in it
    and walk around the sign-in throttle. Behind N load balancers, the N-th address from
    the right is the client's, and X-Forwarded-Proto says whether it came over HTTPS.
    """

    def __init__(self, app: Flask, wsgi_app: Any) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._fixed: dict[int, ProxyFix] = {}

    def __call__(self, environ: Any, start_response: Any) -> Any:
        hops = int(self.app.config.get("TRUSTED_PROXIES") or 0)
        if hops <= 0:
            return self.wsgi_app(environ, start_response)
        if hops not in self._fixed:
            self._fixed[hops] = ProxyFix(self.wsgi_app, x_for=hops, x_proto=hops)
        return self._fixed[hops](environ, start_response)


#: Content-Security-Policy of every page: our own scripts, styles, images and frames only
#: (no inline script or style: templates and htmx carry none); no plugins; forms post to
#: us; nobody frames us (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "font-src 'self'", "connect-src 'self'", "frame-src 'self'", "object-src 'none'",
    "base-uri 'self'", "form-action 'self'", "frame-ancestors 'none'",
))
#: sent with every response (OWASP ASVS 5.0 V3.4)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers without frame-ancestors
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def init_app(app: Flask) -> None:
    """Commit once per request at its boundary; render errors in the portal's style."""
    app.request_class = PortalRequest
    app.wsgi_app = TrustedProxies(app, app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def _refuse_nul() -> Any:
        # No text we search for holds a NUL, and PostgreSQL refuses it outright: answered
        # here as bad input rather than as a database error. (A form's NUL is a field
        # error of its form, forms.PortalForm; the API's, of its body, api.json_body.)
        if b"%00" in request.query_string:
            abort(400, "Text may not contain NUL characters.")
        return None

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # A view may set its own (an email shown in a frame of our page): kept.
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.after_request
    def _commit(response: Response) -> Response:
        # GET never writes (a flush in one is refused: database.SafeRequestWrote).
        if response.status_code >= 400:
            db.session.rollback()
        elif reads_only():
            db.end_read()
        else:
            db.session.commit()
        if request.headers.get("HX-Request") is not None or "HX-Request" in response.vary:
            response.vary.add("HX-Request")
            response.vary.add("HX-History-Restore-Request")  # see is_htmx
        return response

    @app.errorhandler(DomainError)
    def _refused(error: DomainError) -> Any:
        # A service refused: nothing it wrote stays (the boundary rolls back any 4xx), and
        # the asker reads why in its own form: JSON, a notice for htmx, or a page.
        db.session.rollback()
        if is_api():
            return json_error(error.status, error.code, error.message, error.fields,
                              **error.extra)
        if error.status == 404:  # the same page as any 404: nothing tells them apart
            return _http_error(NotFound())
        if is_htmx():
            return render_template("errors/_refused.html", error=error), error.status
        return render_template("errors/refused.html", error=error), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Any:
        original = getattr(error, "original_exception", None)
        if unavailable(original):
            # Raised at the boundary (the COMMIT in _commit), where Flask hands it over
            # as a 500: the same answer as when a query inside the view fails.
            return _database_unavailable(original)
        db.session.rollback()
        if is_api():
            return json_error(error.code or 500, error.name.lower().replace(" ", "_"),
                              error.description or error.name)
        code = error.code or 500
        if code == 404 and is_htmx():  # htmx swaps a 404 in (base.html): a notice, no page
            return render_template("errors/_not_found.html"), 404
        known = code in (403, 404, 413, 429)
        template = f"errors/{code}.html" if known else "errors/generic.html"
        return render_template(template, error=error), code

    @app.errorhandler(sa.exc.OperationalError)
    def _database_error(error: sa.exc.OperationalError) -> Any:
        if unavailable(error):
            return _database_unavailable(error)
        return _server_error(error)

    def _database_unavailable(error: sa.exc.OperationalError) -> Any:
        # The connection dropped (a failover, a restart, a network cut) or the database
        # stayed locked past its timeout: the transaction rolled back whole, so trying
        # again is safe, and the answer says so (an API client retries with its
        # Idempotency-Key). The pool replaces the dead connection by itself (pre-ping).
        db.session.rollback()
        app.logger.warning("database unavailable on %s %s: %s", request.method,
                           request.path, error.orig)
        if is_api():
            response, status = json_error(503, "unavailable", "The database did not answer; "
                                          "nothing was saved. Try again in a moment.")
        else:
            response, status = render_template("errors/503.html"), 503
        return response, status, {"Retry-After": "2"}

    @app.errorhandler(Exception)
    def _server_error(error: Exception) -> Any:
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if is_api():
            return json_error(500, "server_error", "Something went wrong on our side.")
        return render_template("errors/500.html"), 500

    from portal.core import filters

    filters.init_app(app)
    app.jinja_env.globals["url_for"] = remembering_url_for(app)


#: a bound on the URLs one process remembers (a page builds a few dozen distinct ones)
MAX_REMEMBERED_URLS = 4096


def remembering_url_for(app: Flask) -> Callable[..., str]:
    """The templates' ``url_for``, remembering each relative URL it built.

    Every page builds the same navigation, tab and pager links, and werkzeug takes ~20 µs
    a link. A relative URL depends only on the script root, the endpoint and its values,
    so it is kept by those. Anything else (``_external``, ``_anchor``, host or subdomain
    matching, URL default callbacks, no request) goes to Flask's ``url_for`` unchanged.
    """
    built: dict[tuple[Any, ...], str] = {}
    build = app.url_for

    def url_for(endpoint: str, /, **values: Any) -> str:
        if (not has_request_context() or any(app.url_default_functions.values())
                or app.url_map.host_matching or app.subdomain_matching
                or any(name[:1] == "_" for name in values)):
            return build(endpoint, **values)
        blueprint = request.blueprint if endpoint[:1] == "." else None
        try:
            # The type too: True == 1, but url_for renders them differently.
            key = (request.script_root, blueprint, endpoint,
                   *((name, type(value), value) for name, value in sorted(values.items())))
            return built[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value
            return build(endpoint, **values)
        if len(built) >= MAX_REMEMBERED_URLS:
            built.clear()
        url = built[key] = build(endpoint, **values)
        return url

    return url_for


def is_api() -> bool:
    """The request is the JSON API's: errors answer in its one JSON shape."""
    return request.path.startswith("/api/")


def json_error(http_status: int, code: str, message: str,
               fields: dict[str, str] | None = None, **extra: object) -> tuple[Response, int]:
    """A JSON error response in the API's one shape:
    ``{"error": code, "message": …, "fields": {…}}`` plus anything in ``extra``."""
    body: dict[str, object] = {"error": code, "message": message, "fields": fields or {}}
    body.update(extra)
    return jsonify(body), http_status


def roles_required(*roles: str) -> Callable[[F], F]:
    """Sign-in required, and one of ``roles``; anyone else gets 403."""

    def decorate(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def staff_required(view: F) -> F:
    """Admins and channel managers only."""
    return roles_required("admin", "manager")(view)


def admin_required(view: F) -> F:
    """Admins only."""
    return roles_required("admin")(view)


def is_htmx() -> bool:
    """True when htmx asked for a fragment (it sends HX-Request). A history restore asks
    for the whole page: base.html turns htmx's history cache off and makes it reload the
    page instead, so this only matters should that configuration change."""
    headers = request.headers
    return (headers.get("HX-Request") == "true"
            and headers.get("HX-History-Restore-Request") != "true")


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Managers' pages: anyone else gets a 404, as for a lead they may not see."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapped
