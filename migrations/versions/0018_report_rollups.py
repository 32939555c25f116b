"""report rollups: offers per partner and month, leads per day, durations per month

Revision ID: 0018_report_rollups
Revises: 0017_compliance_reminders
Create Date: 2026-12-03 10:00:00

A year of channel figures read live is a read of a million offers and a join of their
leads (11-22 s at 1,000,000 leads). The rollups keep the same counts, as of now, per
partner and month offered (``offer_months``; the channel's per day in ``offer_days``),
per day of capture (``lead_days``, with each lead's facts in ``lead_facts``) and as
duration histograms per month (``duration_months``: the medians), updated by a flush hook
in every write's transaction (portal.core.rollups).

Over existing data the rollups start ``stale``: the reports read live until
``flask --app portal reports rebuild`` counts everything (``make run`` does it). A database
with no offers and no leads starts ``built``.

Also the indexes the live reads need: the period's offers and a partner's medians from the
index alone on PostgreSQL (INCLUDE), one state's offers, and when each lead was first
qualified.
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_report_rollups'
down_revision = '0017_compliance_reminders'
branch_labels = None
depends_on = None

REPORT_COLUMNS = ["id", "partner_id", "lead_id", "method", "response", "responded_at",
                  "accepted_at", "contacted_at", "closed_at", "outcome", "amount",
                  "lost_reason", "competitor_id", "competitor_other", "decline_reason",
                  "lead_created_at", "product_line_id", "campaign_id", "source_id", "rank"]
OFFER_COUNTS = ("offered", "accepted", "declined", "expired", "followed_up", "on_time",
                "held", "held_open", "won", "lost", "no_interest", "untouched")
SPEED = ("h1", "h4", "h24", "d2", "over", "never")
LEAD_COUNTS = ("captured", "qualified", "offered", "routed", "routed_fast", "accepted",
               "contacted", "won", "lost", "lost_to_competitor", "untouched",
               *(f"{what}_{key}" for key in SPEED for what in ("speed", "speed_won",
                                                               "speed_lost")))


def _counts(names):
    return [sa.Column(name, sa.Integer(), nullable=False, server_default='0')
            for name in names]


def upgrade():
    op.create_table(
        'offer_months',
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        *_counts(OFFER_COUNTS),
        sa.Column('revenue_won', sa.Numeric(precision=16, scale=2), nullable=False,
                  server_default='0'),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_offer_months_partner_id_partners'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('partner_id', 'month', name=op.f('pk_offer_months')),
    )
    op.create_table(
        'offer_days',
        sa.Column('day', sa.Date(), nullable=False),
        *_counts(OFFER_COUNTS),
        sa.Column('revenue_won', sa.Numeric(precision=16, scale=2), nullable=False,
                  server_default='0'),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_offer_days')),
    )
    op.create_table(
        'lead_facts',
        sa.Column('lead_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('qualified_at', sa.DateTime(), nullable=True),
        sa.Column('offered_at', sa.DateTime(), nullable=True),
        sa.Column('routed_at', sa.DateTime(), nullable=True),
        sa.Column('accepted_at', sa.DateTime(), nullable=True),
        sa.Column('touched_at', sa.DateTime(), nullable=True),
        sa.Column('won', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('lost', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('lost_to_competitor', sa.Boolean(), nullable=False,
                  server_default=sa.false()),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'],
                                name=op.f('fk_lead_facts_lead_id_leads'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_lead_facts')),
    )
    op.create_index('ix_lead_facts_created', 'lead_facts',
                    ['created_at', 'routed_at', 'touched_at'], unique=False)
    op.create_table(
        'lead_days',
        sa.Column('day', sa.Date(), nullable=False),
        *_counts(LEAD_COUNTS),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_lead_days')),
    )
    op.create_table(
        'duration_months',
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('seconds', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('kind', 'month', 'seconds', name=op.f('pk_duration_months')),
    )
    op.create_table(
        'rollup_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('contact_sla_hours', sa.Float(), nullable=False),
        sa.Column('built_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_state')),
    )
    bind = op.get_bind()
    empty = not bind.execute(sa.text("SELECT 1 FROM offers LIMIT 1")).first() \
        and not bind.execute(sa.text("SELECT 1 FROM leads LIMIT 1")).first()
    op.execute(sa.text("INSERT INTO rollup_state (id, state, contact_sla_hours) "
                       "VALUES (1, :state, 48)").bindparams(
                           state='built' if empty else 'stale'))

    postgresql = bind.dialect.name == 'postgresql'
    include = {'postgresql_include': REPORT_COLUMNS} if postgresql else {}
    if postgresql:  # the same names, now covering
        op.drop_index('ix_offers_offered', table_name='offers')
        op.create_index('ix_offers_offered', 'offers', ['offered_at'], unique=False,
                        **include)
        op.drop_index('ix_offers_partner_offered', table_name='offers')
        op.create_index('ix_offers_partner_offered', 'offers', ['partner_id', 'offered_at'],
                        unique=False, postgresql_include=['accepted_at', 'response'])
    op.create_index('ix_offers_region_offered', 'offers', ['region', 'offered_at'],
                    unique=False, **include)
    op.create_index('ix_lead_events_qualified', 'lead_events', ['lead_id', 'at'],
                    unique=False, postgresql_where=sa.text("to_status = 'qualified'"),
                    sqlite_where=sa.text("to_status = 'qualified'"))
    if postgresql:
        # Index-only reads need the visibility map: offers change with every accept,
        # contact and outcome, so vacuum them sooner than the default 20 %.
        op.execute("ALTER TABLE offers SET (autovacuum_vacuum_scale_factor = 0.02, "
                   "autovacuum_analyze_scale_factor = 0.02)")


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("ALTER TABLE offers RESET (autovacuum_vacuum_scale_factor, "
                   "autovacuum_analyze_scale_factor)")
        op.drop_index('ix_offers_offered', table_name='offers')
        op.create_index('ix_offers_offered', 'offers', ['offered_at'], unique=False)
        op.drop_index('ix_offers_partner_offered', table_name='offers')
        op.create_index('ix_offers_partner_offered', 'offers', ['partner_id', 'offered_at'],
                        unique=False)
    op.drop_index('ix_lead_events_qualified', table_name='lead_events')
    op.drop_index('ix_offers_region_offered', table_name='offers')
    op.drop_table('rollup_state')
    op.drop_table('duration_months')
    op.drop_table('lead_days')
    op.drop_index('ix_lead_facts_created', table_name='lead_facts')
    op.drop_table('lead_facts')
    op.drop_table('offer_days')
    op.drop_table('offer_months')
