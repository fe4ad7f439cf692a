"""service tickets comments attachments calls surveys

Revision ID: a5b6c7d8e9f0
Revises: c3dd82164d0e
Create Date: 2026-12-03 14:20:00
"""
from alembic import op
import sqlalchemy as sa
import domain.db


revision = 'a5b6c7d8e9f0'
down_revision = 'c3dd82164d0e'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('requester_name', sa.String(length=100), nullable=True),
    sa.Column('requester_email', sa.String(length=254), nullable=True),
    sa.Column('requester_phone', sa.String(length=20), nullable=True),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=2), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('product', sa.String(length=100), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('custom', sa.JSON(), nullable=False),
    sa.Column('source_key', sa.String(length=300), nullable=True),
    sa.Column('thread_id', sa.String(length=300), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('dispatch_rule', sa.String(length=100), nullable=True),
    sa.Column('assignment_key', sa.String(length=200), nullable=True),
    sa.Column('sla', sa.JSON(), nullable=False),
    sa.Column('sla_due_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sla_target', sa.String(length=20), nullable=True),
    sa.Column('first_response_due_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_response_due_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_due_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sla_paused', sa.Boolean(), nullable=False),
    sa.Column('sla_paused_seconds', sa.Double(), nullable=False),
    sa.Column('sla_remaining_seconds', sa.Double(), nullable=True),
    sa.Column('sla_breached', sa.Boolean(), nullable=False),
    sa.Column('sla_breaches', sa.JSON(), nullable=False),
    sa.Column('sla_warnings', sa.JSON(), nullable=False),
    sa.Column('first_response_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_response_seconds', sa.Double(), nullable=True),
    sa.Column('public_replies', sa.Integer(), nullable=False),
    sa.Column('resolved_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution_seconds', sa.Double(), nullable=True),
    sa.Column('resolution_note', sa.Text(), nullable=True),
    sa.Column('reopened', sa.Integer(), nullable=False),
    sa.Column('closed_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('first_contact_resolution', sa.Boolean(), nullable=True),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('csat_comment', sa.Text(), nullable=True),
    sa.Column('policy_versions', sa.JSON(), nullable=False),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_key')
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index('ix_tickets_assignee_status', ['assignee_id', 'status', 'sla_due_at'], unique=False)
        batch_op.create_index('ix_tickets_customer', ['customer_id', 'id'], unique=False)
        batch_op.create_index('ix_tickets_team_status', ['team_id', 'status', 'sla_due_at'], unique=False)

    op.create_table('call_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=100), nullable=False),
    sa.Column('caller', sa.String(length=20), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('recording_url', sa.String(length=500), nullable=True),
    sa.Column('intent', sa.String(length=100), nullable=True),
    sa.Column('started_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('call_id')
    )
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index('ix_call_records_customer', ['customer_id', 'started_at'], unique=False)

    op.create_table('ticket_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('from_customer', sa.Boolean(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('author_name', sa.String(length=254), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('message_id', sa.String(length=300), nullable=True),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_comments_ticket', ['ticket_id', 'id'], unique=False)

    op.create_table('ticket_surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('sent_to', sa.String(length=254), nullable=True),
    sa.Column('sent_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reminded_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('answered_at', domain.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('ticket_surveys', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_surveys_ticket', ['ticket_id', 'id'], unique=False)

    op.create_table('ticket_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('created_at', domain.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['ticket_comments.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.create_index('ix_ticket_attachments_ticket', ['ticket_id', 'id'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('skills', sa.JSON(), server_default='[]', nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('skills')

    with op.batch_alter_table('ticket_attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_attachments_ticket')

    op.drop_table('ticket_attachments')
    with op.batch_alter_table('ticket_surveys', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_surveys_ticket')

    op.drop_table('ticket_surveys')
    with op.batch_alter_table('ticket_comments', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_comments_ticket')

    op.drop_table('ticket_comments')
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index('ix_call_records_customer')

    op.drop_table('call_records')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_team_status')
        batch_op.drop_index('ix_tickets_customer')
        batch_op.drop_index('ix_tickets_assignee_status')

    op.drop_table('tickets')
