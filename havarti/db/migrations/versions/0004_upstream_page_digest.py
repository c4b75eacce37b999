"""Identify stored upstream pages by a digest of their bytes."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.add_column(sa.Column("digest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.drop_column("size")
        batch.drop_column("digest")
