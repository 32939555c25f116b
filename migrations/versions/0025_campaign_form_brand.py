"""campaign form brand: the public form's logo, accent colour and wording per campaign

Revision ID: 0025_campaign_form_brand
Revises: 0024_import_value_maps
Create Date: 2026-12-03 18:00:00

A campaign's hosted form (``/f/<code>``) showed only the manufacturer's name and the
campaign's name. Each campaign may now carry a heading, an introduction and thank-you
wording, an accent colour (``#rrggbb``) and a logo (its bytes and media type), served
by the portal itself so the Content-Security-Policy (``img-src 'self'``) allows it.
"""
from alembic import op
import sqlalchemy as sa


revision = '0025_campaign_form_brand'
down_revision = '0024_import_value_maps'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('form_heading', sa.String(length=160), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('form_intro', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('thanks_text', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('accent_color', sa.String(length=7), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('logo', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('logo_type', sa.String(length=32), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('brand_updated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        for name in ('brand_updated_at', 'logo_type', 'logo', 'accent_color', 'thanks_text',
                     'form_intro', 'form_heading'):
            batch_op.drop_column(name)
