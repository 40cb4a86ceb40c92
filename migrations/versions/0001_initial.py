"""The initial store: series, the raw head, sealed chunks (raw samples and rollups).

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False, server_default=""),
        sa.UniqueConstraint("name", "labels", name="uq_series_name_labels"),
    )
    op.create_table(
        "head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "chunks",
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("start_ts", sa.BigInteger, nullable=False),
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("kind", "start_ts", "series_id", name="pk_chunks"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_chunks_series", "chunks", ["series_id", "kind", "start_ts"])


def downgrade() -> None:
    op.drop_index("ix_chunks_series", "chunks")
    op.drop_table("chunks")
    op.drop_table("head")
    op.drop_table("series")
