"""The partner workspace (inbox, lead page, actions, settings) and the managers' lead pages.

One URL serves a page and its fragment: htmx requests (``HX-Request``) get the partial
the page includes, and every response says ``Vary: HX-Request``. Every action is a small
form: without JavaScript a POST redirects (303) back; with htmx the answer is the
re-rendered card or lead panel. A lead the user may not see is a 404 everywhere.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict
from wtforms.fields.choices import SelectChoice

from portal.core import assignment, channel, compliance, fragments, lifecycle
from portal.core.access import visible_lead, visible_lead_or_404, visible_to
from portal.core.checks import text_problem
from portal.core.errors import DomainError, InvalidInput, NotFound
from portal.core.filters import STATUS_LABELS
from portal.core.localtime import viewer_zone
from portal.core.models import WORKING_STATUSES, Lead, LeadStatus, Partner, utcnow
from portal.core.web import is_htmx, staff_only
from portal.extensions import db
from portal.leads import forms, manager_search, partner_inbox, services
from portal.partners import services as partner_service
from portal.reports.export import csv_response
from portal.users.services import invite_colleague, pending_invitations

bp = Blueprint("leads", __name__, url_prefix="/leads")

_ACTIONS = ",".join(services.PAGE_ACTIONS)


# --- helpers ----------------------------------------------------------------------------------



def _my_partner() -> Partner:
    """The signed-in partner user's partner (staff have no inbox: 404)."""
    if current_user.is_staff or current_user.partner is None:
        abort(404)
    return current_user.partner  # type: ignore[no-any-return]


def _page_arg() -> int:
    return request.args.get("page", 1, type=int) or 1


def _per_page() -> int:
    return int(current_app.config["PAGE_SIZE"])


def _respond(page_template: str, fragment_template: str, status: int = 200,
             **context: Any) -> Any:
    """The page, or for htmx just its fragment; caches keep the two apart."""
    template = fragment_template if is_htmx() else page_template
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def _safe_next(target: str | None, default: str) -> str:
    # Only back into this area: a crafted "next" must not bounce people elsewhere.
    if (target and target.startswith("/leads") and "//" not in target and "\\" not in target
            and not any(ord(char) < 32 for char in target)):
        return target
    return default


def _product_line_options(lines: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """A product-line filter's options: any, then "Name (CODE)" for each (code, name)."""
    return forms._opts(((code, f"{name} ({code})") for code, name in lines),
                       "Any line")


# --- the partner's inbox ----------------------------------------------------------------------


_TAB_STAGES: dict[str, tuple[str, ...]] = {
    "open": tuple(partner_inbox.OPEN_STAGES),
    "overdue": ("accepted", *partner_inbox.OPEN_STAGES),
    "closed": tuple(partner_inbox.CLOSED_STAGES),
    "dealers": ("offered", "accepted", *partner_inbox.OPEN_STAGES, *partner_inbox.CLOSED_STAGES),
}


#: the inbox filter form's fields, as the query string names them
_FILTER_ARGS = ("tab", "q", "stage", "product_line", "rank", "age", "dealer", "sort",
                "assignee")


def _filter_args() -> tuple[str, ...]:
    return tuple(request.args.get(name, "") for name in _FILTER_ARGS)


def _inbox_filters() -> partner_inbox.InboxFilters:
    """The filters the query string asks for, as the filter form checks them (a bad
    value is dropped and marked); checked once per distinct query (portal.core.fragments)."""
    checked = fragments.remembered(
        "leads.inbox_filters", _filter_args(),
        lambda: forms.InboxFilterForm(request.args).to_filters())
    return dataclasses.replace(checked, me=current_user.id)  # the caller's own copy


def _filter_bar(data: partner_inbox.Inbox) -> Markup:
    """The inbox's filter bar with the choices for this tab and partner. It depends on
    the query string and the choices only, so it is rendered once per distinct state."""
    tab = data.filters.tab
    dealers: tuple[tuple[str, str], ...] = ()
    if data.partner.is_distributor:
        dealers = tuple((code, name) for code, name in db.session.execute(
            select(Partner.code, Partner.name).where(Partner.parent_id == data.partner.id)
            .order_by(Partner.code).limit(500)))
    lines = tuple(data.product_lines)
    people = _assignee_choices(data.partner)

    def render() -> str:
        form = forms.InboxFilterForm(request.args)
        form.validate()  # marks what was dropped
        form.stage.choices = forms._opts(
            ((s, STATUS_LABELS.get(s, s)) for s in _TAB_STAGES.get(tab, ())), "Any stage")
        form.product_line.choices = _product_line_options(lines)
        form.dealer.choices = forms._opts(((c, f"{n} ({c})") for c, n in dealers),
                                          "All dealers")
        form.assignee.choices = forms._opts(people, "Anyone")
        return render_template("partials/leads/_filters.html", form=form, tab=tab)

    html = fragments.remembered("leads.filter_bar",
                                (tab, _filter_args(), lines, dealers, people), render)
    return Markup(html)  # noqa: S704 (our template's HTML)


def _assignee_choices(partner: Partner) -> tuple[tuple[str, str], ...]:
    """The inbox's "Assigned to" filter: me, nobody, and for those who assign leads to
    colleagues, each of the firm's people."""
    people: list[tuple[str, str]] = [("me", "Me"), ("none", "Nobody (unassigned)")]
    if assignment.may_assign_others(current_user, partner):
        people += [(str(u.id), assignment.person(u))
                   for u in assignment.salespeople(db.session, partner.id)
                   if u.id != current_user.id]
    return tuple(people)


@bp.get("/")
@login_required
def inbox():  # type: ignore[no-untyped-def]
    """A partner's leads by tab: new offers, to contact, open, overdue, closed (+ dealers)."""
    if current_user.is_staff:
        return redirect(url_for("leads.search"))
    partner = _my_partner()
    data = partner_inbox.inbox(db.session, partner, _inbox_filters(), page=_page_arg(),
                               per_page=_per_page(),
                               where=_viewer_zone)
    context: dict[str, Any] = {
        "inbox": data, "actions": _offer_actions(data.page.items, request.full_path),
        "oob_sort": is_htmx()}
    if not is_htmx():  # an htmx filter request swaps the list only
        context["filter_bar"] = _filter_bar(data)
    return _respond("leads/inbox.html", "partials/leads/_list.html", **context)


#: the inbox CSV's columns, in order (the contact columns are empty where hidden)
_CSV_HEADER = ("lead_id", "name", "company", "status", "rank", "product_line",
               "product_line_name", "message", "postal_code", "town", "region",
               "next_appointment", "quote_amount", "last_activity", "received",
               "email", "phone", "address", "assigned_to")


@bp.get("/export.csv")
@login_required
def inbox_csv():  # type: ignore[no-untyped-def]
    """The inbox list as it is filtered and sorted, as CSV (the partner's own leads;
    contact details only where the partner may read them)."""
    partner = _my_partner()
    filters = forms.InboxFilterForm(request.args).to_filters(me=current_user.id)
    rows = partner_inbox.export_rows(db.session, partner, filters,
                                     where=_viewer_zone)
    hidden = channel.contacts_hidden(db.session)

    def line(card: partner_inbox.Card, row: Any) -> list[Any]:
        shown = channel.partner_reads(card.status, row.owner_partner_id, partner.id,
                                      hidden=hidden)
        step = card.next_step
        return [card.key, card.name, card.company, card.status, card.rank or "",
                card.product_line, card.product_line_name,
                partner_inbox.excerpt(row.comments), card.postal_code, card.city,
                row.region, step.on.isoformat() if step else "",
                "" if card.quote_amount is None else f"{card.quote_amount:.2f}",
                card.last_activity.isoformat(timespec="minutes") if card.last_activity
                else "", card.created_at.isoformat(timespec="minutes"),
                row.email if shown else "", row.phone if shown else "",
                row.address if shown else "", card.assignee]

    return csv_response(f"leads-{filters.tab}.csv", _CSV_HEADER,
                        (line(card, row) for card, row in rows))


class CardActions(NamedTuple):
    """What a list's cards need for their quick actions (the ``cards`` macro writes the
    forms): which ones, whose offers, where a plain POST goes back to, the decline form."""

    kind: str  #: "offer" (accept, decline) or "route" (the managers' queue)
    back: str  #: the list's URL, where a plain POST returns after the action
    partner_id: int | None = None  #: offers held by this partner carry accept and decline
    decline: forms.DeclineForm | None = None  #: labels, choices; values, errors if refused


def _has_card_actions(card: partner_inbox.Card, partner_id: int | None) -> bool:
    """A new offer held by the viewer's partner: its card offers accept and decline."""
    return card.status == LeadStatus.OFFERED and card.assigned_partner_id == partner_id


def _offer_actions(cards: Iterable[partner_inbox.Card], back: str,
                   decline: forms.DeclineForm | None = None) -> CardActions | None:
    """Accept and decline for those ``cards`` that are the viewer's new offers (None when
    there are none: a list of other stages builds no form)."""
    mine = current_user.partner_id
    if not any(_has_card_actions(card, mine) for card in cards):
        return None
    if decline is None:  # nothing entered: its labels and choices, shared (~50 µs to build)
        decline = fragments.remembered(
            "leads.blank_forms", "decline",
            lambda: forms.DeclineForm(formdata=None, meta={"csrf": False}))
    return CardActions("offer", back, mine, decline)


# --- one lead ------------------------------------------------------------------------------------


def _lead_forms(view: services.LeadView, failed: tuple[str, forms.ActionForm] | None = None,
                partner_q: str = "") -> dict[str, forms.ActionForm]:
    """A fresh form for each action the viewer may take (the failed one keeps its input)."""
    made: dict[str, forms.ActionForm] = {}
    for action in view.actions:
        if failed is not None and failed[0] == action:
            made[action] = failed[1]
            continue
        form = forms.ACTION_FORMS[action](formdata=None, view="page")
        made[action] = form
    for action, form in made.items():
        if isinstance(form, forms.LostForm):
            form.set_competitors(view.competitors)
        elif isinstance(form, forms.ForwardForm):
            form.set_dealers(view.dealers)
        elif isinstance(form, forms.ReassignForm):
            form.set_partners(services.reassign_choices(
                db.session, view.lead, partner_q, keep=form.partner.data or ""), partner_q)
        forms.unique_ids(form, f"{action}-page")
    return made


def _conflict_forms(view: services.LeadView) -> dict[str, forms.ActionForm]:
    if not current_user.is_staff:
        return {}
    made = {}
    for event in view.conflicts:
        form = forms.ReviewConflictForm(formdata=None, view="page", event=str(event.id))
        made[str(event.id)] = forms.unique_ids(form, f"conflict-{event.id.hex[:12]}")
    return made  # type: ignore[return-value]


def _render_lead(lead: Lead, *, status: int = 200, message: str = "",
                 failed: tuple[str, forms.ActionForm] | None = None,
                 message_kind: str = "", partner_q: str = "",
                 assign_failed: Any = None) -> Any:
    view = services.lead_view(db.session, lead, current_user)
    open_action = failed[0] if failed else ("reassign" if partner_q else "")
    return _respond("leads/detail.html", "partials/leads/_detail.html", status,
                    view=view, lead=lead, action_forms=_lead_forms(view, failed, partner_q),
                    conflict_forms=_conflict_forms(view), message=message,
                    open_action=open_action,
                    message_kind=message_kind or ("error" if failed else "success"),
                    labels=forms.ACTION_LABELS, assign_failed=assign_failed)


@bp.get("/<uuid:lead_id>")
@login_required
def lead(lead_id: Any):  # type: ignore[no-untyped-def]
    """One lead: prospect, inquiry, rank and why, literature, timeline, notes, actions."""
    found = visible_lead_or_404(db.session, current_user, lead_id)
    # the reassign picker's search without JavaScript: the page again, the picker open
    return _render_lead(found, partner_q=_partner_search() if current_user.is_staff else "")


def _partner_search() -> str:
    """What a manager typed into the reassign picker (``partner_q``): text, one line."""
    q = " ".join(request.args.get("partner_q", "").split())[:80]
    return "" if text_problem(q) else q


@bp.get("/<uuid:lead_id>/reassign/partners")
@staff_only
def reassign_partners(lead_id: Any):  # type: ignore[no-untyped-def]
    """The reassign picker's partners for what was typed (htmx, as the manager types):
    those matching, each with whether it may take this lead and why not."""
    found = visible_lead_or_404(db.session, current_user, lead_id)
    q = _partner_search()
    response = make_response(render_template(
        "partials/leads/_reassign_choices.html", lead=found, search=q,
        choices=services.reassign_choices(db.session, found, q)))
    response.vary.add("HX-Request")
    return response


def _still_visible(lead_id: Any) -> Lead | None:
    return db.session.scalars(
        select(Lead).where(Lead.id == lead_id, visible_to(current_user))
        .options(selectinload(Lead.product_line), selectinload(Lead.assigned_partner))
    ).first()


def _viewer_zone() -> Any:
    return viewer_zone(db.session, current_user)


def _render_card(lead: Lead, *, message: str = "", status: int = 200,
                 failed: tuple[str, forms.ActionForm] | None = None,
                 message_kind: str = "") -> Any:
    current = lifecycle.current_offer(db.session, lead) if lead.status == "offered" else None
    queued = lead.status == LeadStatus.UNASSIGNED  # a card of the managers' queue
    step = (partner_inbox.next_appointment(db.session, lead.id, _viewer_zone)
            if lead.status in WORKING_STATUSES else None)
    card = partner_inbox.Card.of(lead, expires_at=current.expires_at if current else None,
                                 late=partner_inbox.is_overdue(lead), routing=queued,
                                 next_step=step)
    # After an action the card is re-rendered by the POST: keep pointing back to the list.
    back = request.form.get("next", "")
    actions: CardActions | None
    if queued:
        actions = CardActions("route", back) if current_user.is_staff else None
    else:  # a refused decline shows its reason and details again, with what to correct
        refused = failed[1] if failed is not None and failed[0] == "decline" else None
        actions = _offer_actions([card], back, refused)  # type: ignore[arg-type]
    response = make_response(render_template(
        "partials/leads/_card.html", lead=card, now=utcnow(), actions=actions,
        message=message, open_action=failed[0] if failed else "", show_partner=False,
        message_kind=message_kind), status)
    if is_htmx() and failed is None:
        _add_fresh_tabs(response)
    response.vary.add("HX-Request")
    return response


def _add_fresh_tabs(response: Any) -> None:
    """A card changed tabs (accepted, declined …) by htmx: the inbox's tab counts and, on
    the inbox, the list's total come along out of band, so they follow without a reload.
    Extra news only: whatever goes wrong here (the page URL is the browser's to send)
    must not undo the action, so it runs in a savepoint and is left out when it fails."""
    partner = current_user.partner
    if partner is None:
        return
    page_url = urlsplit(request.headers.get("HX-Current-URL", ""))
    on_inbox = page_url.path == url_for("leads.inbox")
    filters = forms.InboxFilterForm(MultiDict(parse_qsl(page_url.query))).to_filters(
        me=current_user.id)
    whose = partner_inbox.assignee_filter(filters) if on_inbox else ("", None)
    total = None
    matches: dict[str, int] = {}
    try:
        with db.session.begin_nested():
            counts = partner_inbox.inbox_counts(db.session, partner, assignee=whose)
            if on_inbox:  # the list the card is on, with its filters
                total = partner_inbox.list_total(db.session, partner, filters, counts)
                matches = partner_inbox.search_counts(db.session, partner, filters.q,
                                                      assignee=whose)
    except SQLAlchemyError:
        current_app.logger.exception("inbox counts after an action")
        return
    tabs = partner_inbox.tabs_for(partner)
    html = render_template("partials/leads/_tabs.html", tabs=tabs, tab=filters.tab,
                           counts=counts, oob=True,
                           assignee=filters.assignee if on_inbox else "")
    if total is not None:
        html += render_template("partials/leads/_total.html", page=total)
    if filters.q and on_inbox:
        html += render_template(
            "partials/leads/_matches.html", tabs=tabs, q=filters.q, oob=True,
            assignee=filters.assignee,
            elsewhere=partner_inbox.matches_elsewhere(matches, filters.tab))
    response.set_data(response.get_data(as_text=True) + html)


@bp.post(f"/<uuid:lead_id>/<any({_ACTIONS}):action>")
@login_required
def act(lead_id: Any, action: str):  # type: ignore[no-untyped-def]
    """Apply one action to a lead through the lifecycle; 303 back, or the fragment for htmx."""
    response = make_response(_act(lead_id, action))
    if is_htmx() and request.form.get("view") != "card" and response.status_code != 422:
        # The lead panel's answer says what happened at its top, and the forms sit at its
        # bottom: show its top where the user is looking (on a phone it was 800-1,700 px
        # above). A card is in view as it is; a 422 keeps the form in view, whose fields
        # say what to correct.
        response.headers["HX-Reswap"] = "outerHTML show:top"
    return response


def _act(lead_id: Any, action: str) -> Any:
    found = visible_lead(db.session, current_user, lead_id)
    if found is None:
        if is_htmx():  # the card or panel says so (base.html lets htmx swap this 404)
            return _not_yours_any_more()
        abort(404)
    form = forms.ACTION_FORMS[action]()
    if isinstance(form, forms.LostForm):
        form.set_competitors(services.competitor_names(db.session))
    elif isinstance(form, forms.ForwardForm):
        form.set_dealers(services.dealers_of(db.session, current_user.partner_id, found))
    view_kind = "card" if form.view.data == "card" else "page"
    problem = ""
    status = 422
    stale = False
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():  # a refusal undoes whatever the action wrote
                result = services.run_action(db.session, found, action, form.args(),
                                             current_user)
        except NotFound:
            abort(404)
        except lifecycle.InvalidTransition as error:
            # Another tab or colleague got there first: say so, and show the lead as it is.
            problem, status, stale = _overtaken(error), 409, True
        except DomainError as error:
            problem = error.message
            for name, text in error.fields.items():
                target = name if name in form._fields else None
                if name == "competitor" and "competitor" in form._fields:
                    target = "competitor"
                if target:
                    form[target].errors = [*form[target].errors, text]
        else:
            # Routed again and still no partner fits: done, but not good news.
            kind = ("warning" if action == "route" and result.routing is not None
                    and result.routing.partner is None else "success")
            return _after_action(found, view_kind, form, result.message, kind)
    elif getattr(form, "csrf_token", None) is not None and form.csrf_token.errors:
        problem = "The form expired. Please try again."
    else:
        problem = "Please correct the fields marked below."
    # The savepoint undid the action; the 4xx answer makes the boundary roll back the rest.
    found = visible_lead_or_404(db.session, current_user, lead_id)
    if not is_htmx() and stale:
        # Without JavaScript: back to the lead as it is now, saying why (a reload of the
        # action's address would only send the refused action again).
        flash(problem, "error")
        return redirect(url_for("leads.lead", lead_id=found.id), 303)
    if not is_htmx():
        # A plain POST from a card (no JavaScript) cannot show the card alone: the lead
        # page shows the form again, with what to correct, as one of its own forms (should
        # htmx be running by then); it still goes back to the list afterwards.
        form.view.data = "page"
        return _render_lead(found, status=status, message=problem,
                            failed=None if stale else (action, form), message_kind="error")
    # htmx swaps a 409 or 422 in (base.html's responseHandling) like any answer.
    if view_kind == "card" and stale:
        # The card as the lead is now (its forms, if any, and fresh tab counts).
        return _render_card(found, message=problem, message_kind="error", status=status)
    if view_kind == "card":
        return _render_card(found, message=problem, failed=(action, form), status=status)
    return _render_lead(found, status=status, message=problem,
                        failed=None if stale else (action, form),
                        message_kind="error")


def _not_yours_any_more() -> Any:
    """A 404 for an action on a lead the user cannot see: one it held that has moved on
    (declined in another tab, expired, pulled back) or one it never had: the same answer,
    so nothing tells them apart."""
    return _gone("This lead is no longer in your list: it moved on since the page was "
                 "loaded.", request.form.get("view", "card"), kind="error", status=404)


def _gone(message: str, view_kind: str, *, kind: str = "success", status: int = 200) -> Any:
    """What replaces a card or panel whose lead the user no longer holds (htmx)."""
    response = make_response(render_template(
        "partials/leads/_gone.html", message=message, view_kind=view_kind,
        message_kind=kind), status)
    if view_kind == "card":
        _add_fresh_tabs(response)
    response.vary.add("HX-Request")
    return response


def _overtaken(error: lifecycle.InvalidTransition) -> str:
    """A refused transition in words: what was refused, and that the lead has moved on."""
    label = STATUS_LABELS.get(str(error.current_status), str(error.current_status)).lower()
    return (f"Not done: {error.message}. The lead changed since this page was loaded: it is "
            f"{label} now.")


@bp.get(f"/<uuid:lead_id>/<any({_ACTIONS}):action>")
@login_required
def act_page(lead_id: Any, action: str):  # type: ignore[no-untyped-def]
    """An action's URL opened again (a refused plain POST leaves it in the address bar):
    the lead page, where the action is."""
    visible_lead_or_404(db.session, current_user, lead_id)
    return redirect(url_for("leads.lead", lead_id=lead_id), 303)


def _after_action(lead: Lead, view_kind: str, form: forms.ActionForm, message: str,
                  kind: str = "success") -> Any:
    lead_id = lead.id
    visible = _still_visible(lead_id)
    if is_htmx():
        if visible is None:
            return _gone(message, view_kind)
        if view_kind == "card":
            return _render_card(visible, message=message, message_kind=kind)
        return _render_lead(visible, message=message, message_kind=kind)
    flash(message, kind)
    default = (url_for("leads.lead", lead_id=lead_id) if visible is not None and
               view_kind == "page" else url_for("leads.inbox"))
    target = _safe_next(form.next.data, default)
    if visible is None and target.startswith(url_for("leads.lead", lead_id=lead_id)):
        target = url_for("leads.inbox")
    return redirect(target, 303)


# --- the managers' pages -----------------------------------------------------------------------


def _search_form(args: MultiDict[str, str]) -> forms.SearchForm:
    form = forms.SearchForm(args)
    form.product_line.choices = _product_line_options(
        (code, name) for _, code, name in partner_inbox.product_lines(db.session))
    return form


def _results(form: forms.SearchForm, *, bulk: forms.BulkForm | None = None,
             message: str = "", page: int | None = None) -> dict[str, Any]:
    filters = form.to_filters()
    results = manager_search.search(db.session, filters,
                                    page=page or _page_arg(), per_page=_per_page())
    # Typed a partner's name into the text search? Say where it goes.
    partners_named = (manager_search.partners_matching(db.session, filters.q)
                      if filters.q and not results.total and not filters.partner else [])
    return {"page": results, "form": form, "bulk": bulk or forms.BulkForm(formdata=None),
            "message": message, "partners_named": partners_named,
            "next_url": request.full_path if request.method == "GET" else None}


@bp.get("/search")
@staff_only
def search():  # type: ignore[no-untyped-def]
    """Leads across all partners by status, partner, region, line, rank, campaign, age."""
    form = _search_form(request.args)
    return _respond("leads/search.html", "partials/leads/_results.html",
                    **_results(form))


@bp.get("/queue")
@staff_only
def queue():  # type: ignore[no-untyped-def]
    """Leads no partner fits, oldest first, each with why; route again or reassign."""
    results = manager_search.unassigned_queue(db.session, page=_page_arg(), per_page=_per_page())
    cards = [partner_inbox.Card.of(lead, routing=True) for lead in results.items]
    return _respond("leads/queue.html", "partials/leads/_queue.html",
                    page=dataclasses.replace(results, items=cards),
                    actions=CardActions("route", request.full_path))


@bp.post("/bulk")
@staff_only
def bulk():  # type: ignore[no-untyped-def]
    """Bulk reassign, route again or close as duplicate: review first, then confirm."""
    form = forms.BulkForm()
    back = _safe_next(form.next.data, url_for("leads.search"))
    query = MultiDict(parse_qsl(urlsplit(back).query))
    search_form = _search_form(query)
    ids = request.form.getlist("ids")
    if not form.validate_on_submit():
        return _bulk_results(search_form, form, "Please correct the fields marked below.",
                             query, status=422)
    try:
        plan = manager_search.plan_bulk(db.session, current_user, form.action.data or "", ids,
                                  partner_code=form.partner.data or "",
                                  reason=form.reason.data or "")
    except DomainError as error:
        for name, text in error.fields.items():
            if name in form._fields:
                form[name].errors = [*form[name].errors, text]
        return _bulk_results(search_form, form, error.message, query, status=422)
    if form.confirm.data != "yes" or not plan.apply:
        return _respond("leads/bulk_confirm.html", "partials/leads/_bulk_confirm.html",
                        plan=plan, form=form, back=back,
                        label=manager_search.BULK_ACTIONS[plan.action])
    try:
        with db.session.begin_nested():  # all of the plan or nothing
            done = manager_search.run_bulk(db.session, current_user, plan)
    except DomainError as error:
        return _bulk_results(search_form, form, f"Nothing was changed: {error.message}",
                             query, status=409)
    message = f"{len(done)} leads changed."
    if plan.skip:
        message += f" {len(plan.skip)} skipped."
    if is_htmx():
        db.session.flush()
        context = _results(search_form, message=message,
                           page=int(query.get("page", 1) or 1))
        context["next_url"] = back
        return _respond("leads/search.html", "partials/leads/_results.html", **context)
    flash(message, "success")
    return redirect(back, 303)


def _bulk_results(search_form: forms.SearchForm, bulk_form: forms.BulkForm, message: str,
                  query: MultiDict[str, str], *, status: int) -> Any:
    context = _results(search_form, bulk=bulk_form, message=message,
                       page=int(query.get("page", 1) or 1))
    context["next_url"] = bulk_form.next.data
    return _respond("leads/search.html", "partials/leads/_results.html", status, **context)


@bp.get("/partners/<code>")
@staff_only
def partner(code: str):  # type: ignore[no-untyped-def]
    """One partner as managers follow it: its leads, load vs capacity, users, territories."""
    found = partner_service.partner_by_code(db.session, code)
    if found is None:
        abort(404)
    overview = manager_search.partner_overview(db.session, found)
    args = MultiDict(request.args)
    args["partner"] = found.code
    form = _search_form(args)
    return _respond("leads/partner.html", "partials/leads/_results.html",
                    overview=overview, **_results(form))


# --- partner settings ------------------------------------------------------------------------


def _settings_context(partner: Partner, **forms_given: Any) -> dict[str, Any]:
    context: dict[str, Any] = {
        "partner": partner,
        "users": _listed_users(partner),
        "gate": partner_inbox.partner_gate(db.session, partner),
        "invite_form": forms.InviteForm(formdata=None),
        "capacity_form": forms.CapacityForm(formdata=None, capacity=partner.capacity),
        "vacation_form": forms.VacationForm(formdata=None),
        "resume_form": forms.ResumeForm(formdata=None),
        "assigning_form": forms.AssigningForm(formdata=None,
                                              users_may_assign=partner.users_may_assign),
        "unassigned_open": assignment.open_counts(db.session, partner.id).get(None, 0),
    }
    context.update(forms_given)
    return context


@dataclasses.dataclass(frozen=True)
class _Listed:
    """One row of the settings page's users: a user, or an invitation listed alike."""

    name: str
    email: str
    partner_admin: bool
    status: str  #: active, invited or deactivated
    open_leads: int = 0  #: open leads assigned to them


def _listed_users(partner: Partner) -> list[_Listed]:
    """The partner's users and its invitations to addresses with an account elsewhere, in
    one list by email, alike (portal.users.services.invite_colleague says why)."""
    held = assignment.open_counts(db.session, partner.id)
    rows = [_Listed(u.name, u.email, u.partner_admin,
                    "deactivated" if not u.active else
                    "invited" if u.password_hash is None else "active", held.get(u.id, 0))
            for u in partner_service.partner_users(db.session, partner)]
    rows += [_Listed(i.name, i.email, i.partner_admin, "invited")
             for i in pending_invitations(db.session, partner)]
    return sorted(rows, key=lambda row: row.email)


def _settings_admin() -> Partner:
    partner = _my_partner()
    if not current_user.partner_admin:
        abort(403)
    return partner


@bp.get("/settings")
@login_required
def settings():  # type: ignore[no-untyped-def]
    """The partner's users, capacity and vacation pause; a link to the email choices."""
    return render_template("leads/settings.html", **_settings_context(_my_partner()))


def _settings_done(message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("leads.settings"), 303)


def _settings_error(partner: Partner, **given: Any) -> Any:
    db.session.rollback()
    return render_template("leads/settings.html", **_settings_context(partner, **given)), 422


@bp.post("/settings/invite")
@login_required
def settings_invite():  # type: ignore[no-untyped-def]
    """A partner administrator invites a colleague (an email with a link to set a password)."""
    partner = _settings_admin()
    form = forms.InviteForm()
    if form.validate_on_submit():
        try:
            email = invite_colleague(db.session, partner, email=form.email.data or "",
                                     name=form.name.data or "",
                                     partner_admin=bool(form.partner_admin.data),
                                     invited_by=current_user)
        except InvalidInput as error:
            for name, text in error.fields.items():
                if name in form._fields:
                    form[name].errors = [*form[name].errors, text]
        else:
            return _settings_done(f"Invitation sent to {email}.")
    return _settings_error(partner, invite_form=form)


@bp.post("/settings/capacity")
@login_required
def settings_capacity():  # type: ignore[no-untyped-def]
    """A partner administrator sets how many open leads the partner takes at once."""
    partner = _settings_admin()
    form = forms.CapacityForm()
    if form.validate_on_submit():
        services.set_capacity(db.session, partner, form.capacity.data)
        limit = "no limit" if form.capacity.data is None else f"{form.capacity.data} open leads"
        return _settings_done(f"Capacity saved: {limit}.")
    return _settings_error(partner, capacity_form=form)


@bp.post("/settings/vacation")
@login_required
def settings_vacation():  # type: ignore[no-untyped-def]
    """Pause new offers for a vacation; the partner keeps the leads it has."""
    partner = _settings_admin()
    form = forms.VacationForm()
    if form.validate_on_submit():
        reason = "vacation"
        if form.until.data:
            reason += f" until {form.until.data.isoformat()}"
        if form.reason.data:
            reason += f": {form.reason.data}"
        partner_service.pause_partner(db.session, partner, reason)
        return _settings_done("Paused: you get no new offers until you resume.")
    return _settings_error(partner, vacation_form=form)


@bp.post("/settings/resume")
@login_required
def settings_resume():  # type: ignore[no-untyped-def]
    """End the vacation pause: new offers may come again."""
    partner = _settings_admin()
    if not forms.ResumeForm().validate_on_submit():
        abort(400)
    partner_service.resume_partner(db.session, partner)
    return _settings_done("Welcome back: new offers may come again.")



# --- the dashboard's numbers ---------------------------------------------------------------------


@bp.app_template_global()
def workspace_counts() -> dict[str, Any]:
    """For the dashboard: a partner's tab counts and gate, or the managers' queue counts."""
    if not current_user.is_authenticated:
        return {}
    if current_user.is_staff:
        return {"queue": manager_search.queue_counts(db.session)}
    partner = current_user.partner
    if partner is None:
        return {}
    counts = partner_inbox.inbox_counts(db.session, partner)
    # "My leads": the same tabs, counted for the signed-in user alone.
    mine = partner_inbox.inbox_counts(db.session, partner,
                                      assignee=("user", current_user.id))
    return {"tabs": partner_inbox.tabs_for(partner), "counts": counts, "mine": mine,
            "gate": compliance.gate_reason(counts["overdue"], compliance.gate_limit())}


#: a lead id no real lead has, to cut ``url_for``'s URL into a pattern around
_ANY_ID = uuid.UUID(int=0)


def _id_pattern(endpoint: str, **values: Any) -> str:
    """``endpoint``'s URL with ``%s`` where the lead's id goes; built by the templates'
    ``url_for`` (portal.web), which remembers it."""
    url = current_app.jinja_env.globals["url_for"](endpoint, lead_id=_ANY_ID, **values)
    return str(url).replace("%", "%%").replace(str(_ANY_ID), "%s")


@bp.app_template_global()
def lead_link() -> str:
    """The lead page's URL with ``%s`` for the lead's id, for a list that links every
    card (``{{ link % lead.key }}``): building a URL per card cost ~20 µs."""
    return _id_pattern("leads.lead")


@bp.app_template_global()
def lead_action_link(action: str) -> str:
    """An action's URL with ``%s`` for the lead's id, as ``lead_link`` (the cards' forms)."""
    return _id_pattern("leads.act", action=action)


@bp.app_template_global()
def sort_links(sort: str) -> list[tuple[str, str, str]]:
    """The inbox's sort links: (label, the ``sort`` each asks for, its direction now)."""
    return partner_inbox.sort_links(sort)


@bp.app_template_filter("tab_count")
def tab_count(n: int, tab: str) -> str:
    """A tab's count: ``{{ counts[tab]|tab_count(tab) }}`` gives "1,234", or "1,000+"
    where counting stopped."""
    return partner_inbox.count_text(n, tab)


@bp.app_template_filter("time_left")
def time_left(expires_at: Any, now: Any = None) -> str:
    """How long is left to accept an offer, in words: ``{{ expires_at|time_left(now) }}``."""
    return partner_inbox.time_left(expires_at, now or utcnow())


@bp.app_template_filter("money_text")
def money_text(value: Any) -> str:
    """An amount stored as text in an event ("12500.00") shown as money."""
    try:
        return f"${Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(value)
