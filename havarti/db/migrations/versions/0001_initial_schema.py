"""initial schema"""

import sqlalchemy as sa
from alembic import op

import havarti.db.models

revision = '0001'
down_revision = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('project', sa.String(length=255), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('daily_stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('project', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'project', 'kind')
    )
    op.create_table('leases',
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('serial', sa.Integer(), nullable=False),
    sa.Column('created', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('upstream_pages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('etag', sa.String(length=512), nullable=True),
    sa.Column('last_modified', sa.String(length=128), nullable=True),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('fetched', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('checked', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=255), nullable=False),
    sa.Column('packagetype', sa.String(length=32), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('md5', sa.String(length=32), nullable=True),
    sa.Column('blake2_256', sa.String(length=64), nullable=True),
    sa.Column('requires_python', sa.String(length=255), nullable=True),
    sa.Column('yanked', sa.Boolean(), nullable=False),
    sa.Column('yanked_reason', sa.Text(), nullable=True),
    sa.Column('upload_time', havarti.db.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('metadata_sha256', sa.String(length=64), nullable=True),
    sa.Column('storage_key', sa.String(length=512), nullable=False),
    sa.Column('upstream_url', sa.Text(), nullable=True),
    sa.Column('stored', sa.Boolean(), nullable=False),
    sa.Column('last_served', havarti.db.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('description_content_type', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('filename')
    )
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index('ix_files_origin_last_served', ['origin', 'last_served'], unique=False)
        batch_op.create_index('ix_files_project_id', ['project_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_project_id')
        batch_op.drop_index('ix_files_origin_last_served')

    op.drop_table('files')
    op.drop_table('upstream_pages')
    op.drop_table('projects')
    op.drop_table('leases')
    op.drop_table('daily_stats')
    op.drop_table('audit_log')
