"""Identify stored upstream pages by a digest of their bytes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.drop_column("size")
        batch.drop_column("digest")
