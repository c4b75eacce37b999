"""A private project's own choice to merge with or shadow the public project of its name.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("upstream_mode", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("upstream_mode")
