"""merges of duplicate records with undo

Revision ID: d8e9f0a1b2c3
Revises: c7d8e9f0a1b2
Create Date: 2026-12-03 14:35:00
"""
from alembic import op
import sqlalchemy as sa
import domain.db


revision = 'd8e9f0a1b2c3'
down_revision = 'c7d8e9f0a1b2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place, never by batch mode: rebuilding `customers` on SQLite drops the old table, and
    # that fires ON DELETE CASCADE on contacts, deals and every other row of a customer.
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE customers ADD COLUMN merged_into_id INTEGER '
                   'REFERENCES customers (id)')
    else:
        op.add_column('customers', sa.Column('merged_into_id', sa.Integer(), nullable=True))
        op.create_foreign_key('fk_customers_merged_into', 'customers', 'customers',
                              ['merged_into_id'], ['id'])
    op.create_table('merges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entity', sa.String(length=20), nullable=False),
    sa.Column('survivor_id', sa.Integer(), nullable=False),
    sa.Column('absorbed_ids', sa.JSON(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('moved', sa.JSON(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('undone_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('undone_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['survivor_id'], ['customers.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('merges', schema=None) as batch_op:
        batch_op.create_index('ix_merges_survivor', ['survivor_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('merges', schema=None) as batch_op:
        batch_op.drop_index('ix_merges_survivor')

    op.drop_table('merges')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE customers DROP COLUMN merged_into_id')
    else:
        op.drop_constraint('fk_customers_merged_into', 'customers', type_='foreignkey')
        op.drop_column('customers', 'merged_into_id')
