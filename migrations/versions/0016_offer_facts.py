"""offers: what each partner did with its offer, and the lead as it was offered

Revision ID: 0016_offer_facts
Revises: 0015_notify_indexes
Create Date: 2026-12-03 07:00:00

The channel reports count each partner over its own offers (DESIGN §7): accepted, first
contact, outcome, by this partner, even when the lead moved on later. The lifecycle now
writes them on the offer in each event's transaction, with the lead's product line,
campaign, source, rank and region at the time of the offer (the reports' filters, with
no join). Existing offers are filled in from the lead events: each event belongs to the
newest offer of its lead made at or before it.
"""
import warnings
from collections import defaultdict
from decimal import Decimal, InvalidOperation

from alembic import op
import sqlalchemy as sa


revision = '0016_offer_facts'
down_revision = '0015_notify_indexes'
branch_labels = None
depends_on = None

_FKS = (('competitor_id', 'competitors'), ('product_line_id', 'product_lines'),
        ('campaign_id', 'campaigns'), ('source_id', 'sources'))
_STAGES = {'contacted', 'appointment', 'quoted'}
_OUTCOMES = {'won', 'lost', 'no_interest'}


def upgrade():
    columns = [
        sa.Column('accepted_at', sa.DateTime(), nullable=True),
        sa.Column('contacted_at', sa.DateTime(), nullable=True),
        sa.Column('closed_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=12), nullable=True),
        sa.Column('amount', sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column('lost_reason', sa.String(length=20), nullable=True),
        sa.Column('competitor_id', sa.Integer(), nullable=True),
        sa.Column('competitor_other', sa.String(length=120), nullable=False, server_default=''),
        sa.Column('lead_created_at', sa.DateTime(), nullable=True),
        sa.Column('product_line_id', sa.Integer(), nullable=True),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('source_id', sa.Integer(), nullable=True),
        sa.Column('rank', sa.String(length=8), nullable=True),
        sa.Column('region', sa.String(length=10), nullable=False, server_default=''),
    ]
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        # SQLite adds a foreign key only by copying the table: one copy for all columns.
        # Reflecting offers reflects partners too, whose lower(code) index SQLAlchemy cannot
        # reflect (it warns); the copy is of offers alone, so the warning is beside the point.
        with warnings.catch_warnings(), op.batch_alter_table('offers', schema=None) as batch_op:
            warnings.simplefilter('ignore', sa.exc.SAWarning)
            for column in columns:
                batch_op.add_column(column)
            for name, target in _FKS:
                batch_op.create_foreign_key(op.f(f'fk_offers_{name}_{target}'), target,
                                            [name], ['id'])
    else:
        for column in columns:
            op.add_column('offers', column)
        for name, target in _FKS:
            op.create_foreign_key(op.f(f'fk_offers_{name}_{target}'), 'offers', target,
                                  [name], ['id'])
    _backfill(op.get_bind())


def _amount(raw):
    try:
        return Decimal(str(raw)) if raw not in (None, '', 'None') else None
    except InvalidOperation:
        return None


def _backfill(bind, batch=5000):
    # Lightweight tables: reflecting them would reflect partners too (its expression index).
    offers = sa.table(
        'offers', *(sa.column(name) for name in (
            'id', 'lead_id', 'offered_at', 'accepted_at', 'contacted_at', 'closed_at', 'outcome',
            'amount', 'lost_reason', 'competitor_id', 'competitor_other', 'lead_created_at',
            'product_line_id', 'campaign_id', 'source_id', 'rank', 'region')))
    leads = sa.table('leads', *(sa.column(name) for name in (
        'id', 'created_at', 'product_line_id', 'campaign_id', 'source_id', 'rank', 'region')))
    events = sa.table('lead_events', sa.column('lead_id'), sa.column('kind'), sa.column('at'),
                      sa.column('seq'), sa.column('data', sa.JSON))
    competitors = sa.table('competitors', sa.column('id'), sa.column('name'))
    named = {name.lower(): cid for cid, name in bind.execute(
        sa.select(competitors.c.id, competitors.c.name))}
    kinds = ['accepted', 'reopened', *_STAGES, *_OUTCOMES]
    last = None
    while True:
        query = sa.select(offers.c.lead_id).distinct().order_by(offers.c.lead_id).limit(batch)
        if last is not None:
            query = query.where(offers.c.lead_id > last)
        ids = list(bind.execute(query).scalars())
        if not ids:
            return
        last = ids[-1]
        facts = {}
        by_lead = defaultdict(list)
        for row in bind.execute(
                sa.select(offers.c.id, offers.c.lead_id, offers.c.offered_at, leads.c.created_at,
                          leads.c.product_line_id, leads.c.campaign_id, leads.c.source_id,
                          leads.c.rank, leads.c.region)
                .join(leads, leads.c.id == offers.c.lead_id)
                .where(offers.c.lead_id.in_(ids))
                .order_by(offers.c.lead_id, offers.c.offered_at, offers.c.id)):
            by_lead[row.lead_id].append((row.offered_at, row.id))
            facts[row.id] = {
                'b_id': row.id, 'accepted_at': None, 'contacted_at': None, 'closed_at': None,
                'outcome': None, 'amount': None, 'lost_reason': None, 'competitor_id': None,
                'competitor_other': '', 'lead_created_at': row.created_at,
                'product_line_id': row.product_line_id, 'campaign_id': row.campaign_id,
                'source_id': row.source_id, 'rank': row.rank, 'region': row.region or ''}
        for event in bind.execute(
                sa.select(events.c.lead_id, events.c.kind, events.c.at, events.c.data)
                .where(events.c.lead_id.in_(ids), events.c.kind.in_(kinds))
                .order_by(events.c.lead_id, events.c.at, events.c.seq)):
            owner = None
            for offered_at, offer_id in by_lead.get(event.lead_id, ()):
                if offered_at <= event.at:
                    owner = offer_id
            if owner is None:
                continue
            fact, data = facts[owner], event.data or {}
            if event.kind == 'accepted' and fact['accepted_at'] is None:
                fact['accepted_at'] = event.at
            elif event.kind in _STAGES and fact['contacted_at'] is None:
                fact['contacted_at'] = event.at
            elif event.kind in _OUTCOMES:
                competitor = str(data.get('competitor') or '') if event.kind == 'lost' else ''
                fact.update(
                    closed_at=event.at, outcome=event.kind,
                    amount=_amount(data.get('amount')) if event.kind == 'won' else None,
                    lost_reason=data.get('reason') if event.kind == 'lost' else None,
                    competitor_id=named.get(competitor.lower()),
                    competitor_other='' if competitor.lower() in named else competitor[:120])
            elif event.kind == 'reopened':
                fact.update(closed_at=None, outcome=None, amount=None, lost_reason=None,
                            competitor_id=None, competitor_other='')
        if facts:
            bind.execute(
                offers.update().where(offers.c.id == sa.bindparam('b_id'))
                .values({name: sa.bindparam(name) for name in next(iter(facts.values()))
                         if name != 'b_id'}),
                list(facts.values()))


def downgrade():
    sqlite = op.get_bind().dialect.name == 'sqlite'
    names = ('region', 'rank', 'source_id', 'campaign_id', 'product_line_id',
             'lead_created_at', 'competitor_other', 'competitor_id', 'lost_reason', 'amount',
             'outcome', 'closed_at', 'contacted_at', 'accepted_at')
    if sqlite:
        with warnings.catch_warnings(), op.batch_alter_table('offers', schema=None) as batch_op:
            warnings.simplefilter('ignore', sa.exc.SAWarning)
            for name, target in _FKS:
                batch_op.drop_constraint(op.f(f'fk_offers_{name}_{target}'), type_='foreignkey')
            for name in names:
                batch_op.drop_column(name)
    else:
        for name, target in _FKS:
            op.drop_constraint(op.f(f'fk_offers_{name}_{target}'), 'offers', type_='foreignkey')
        for name in names:
            op.drop_column('offers', name)
