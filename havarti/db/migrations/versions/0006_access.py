"""Access: API tokens, tombstones of deleted files, reserved names, package policies."""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("projects", sa.Text(), nullable=False, server_default=""),
        sa.Column("note", sa.String(255), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "tombstones",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("deleted", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "reserved_names",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("pattern", sa.String(255), nullable=False, unique=True),
        sa.Column("note", sa.String(255), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "policy_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("match", sa.String(255), nullable=False, server_default=""),
        sa.Column("filename", sa.String(255), nullable=False, server_default=""),
        sa.Column("reason", sa.String(255), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("policy_rules", "reserved_names", "tombstones", "tokens"):
        op.drop_table(table)
