"""The backend log: per-request RTF records, log positions, ingestion counters.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rtf_records",
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("voice", sa.Text, nullable=False),
        sa.Column("elapsed_ms", sa.Integer, nullable=False),
        sa.Column("audio_seconds", sa.Float, nullable=False),
        sa.Column("rtf", sa.Float),
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("first_after_start", sa.Integer, nullable=False, server_default="0"),
        sa.Column("log", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("ts", "source", "voice", "elapsed_ms", name="pk_rtf_records"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "log_positions",
        sa.Column("log", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("dev", sa.BigInteger, nullable=False),
        sa.Column("inode", sa.BigInteger, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("fp_len", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("skip_line", sa.Integer, nullable=False, server_default="0"),
        sa.Column("first_pending", sa.Integer, nullable=False, server_default="0"),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("changed", sa.Float, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("log", "role", name="pk_log_positions"),
    )
    op.create_table(
        "log_counters",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", "label", name="pk_log_counters"),
    )


def downgrade() -> None:
    op.drop_table("log_counters")
    op.drop_table("log_positions")
    op.drop_table("rtf_records")
