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
    pass


def downgrade() -> None:
    pass
