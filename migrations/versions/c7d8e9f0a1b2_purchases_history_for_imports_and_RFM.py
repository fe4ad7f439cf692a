"""purchases history for imports and RFM

Revision ID: c7d8e9f0a1b2
Revises: b6c7d8e9f0a1
Create Date: 2026-12-03 14:35:00
"""
from alembic import op
import sqlalchemy as sa
import domain.db


revision = 'c7d8e9f0a1b2'
down_revision = 'b6c7d8e9f0a1'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('purchases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('purchased_on', sa.Date(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=False),
    sa.Column('product', sa.String(length=200), nullable=True),
    sa.Column('order_number', sa.String(length=100), nullable=True),
    sa.Column('reference', sa.String(length=400), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('customer_id', 'reference', name='uq_purchases_customer_reference')
    )
    op.create_index('ix_purchases_customer_on', 'purchases', ['customer_id', 'purchased_on'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_purchases_customer_on', table_name='purchases')
    op.drop_table('purchases')
