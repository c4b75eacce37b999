"""Store the rendered upstream part of each project page."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.add_column(sa.Column("rendered", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstream_pages") as batch:
        batch.drop_column("rendered")
