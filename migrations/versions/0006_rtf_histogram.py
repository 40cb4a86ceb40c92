"""The RTF histogram: cumulative bucket counts per engine, voice and source, backfilled from
the records already stored.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The buckets as this revision made them (``specs/backend.RTF_BUCKETS`` then): a later change of
# the buckets is a migration of its own, since counts cannot be split finer afterwards.
BUCKETS = (0.15, 0.2, 0.25, 0.3, 0.35, 0.5, 1.0, 2.0, 5.0)


def upgrade() -> None:
    op.create_table(
        "rtf_histogram",
        sa.Column("engine", sa.Text, nullable=False),
        sa.Column("voice", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("le", sa.Float, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("rtf_sum", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("engine", "voice", "source", "le", name="pk_rtf_histogram"),
    )
    # 9e999 is SQLite's +Inf; NULL RTFs (empty audio) were never observed
    bucket = " ".join(f"WHEN rtf <= {b!r} THEN {b!r}" for b in BUCKETS)
    op.execute(f"INSERT INTO rtf_histogram (engine, voice, source, le, count, rtf_sum) "
               f"SELECT engine, voice, source, CASE {bucket} ELSE 9e999 END AS bucket, count(*), total(rtf) "
               f"FROM rtf_records WHERE rtf IS NOT NULL GROUP BY engine, voice, source, bucket")


def downgrade() -> None:
    op.drop_table("rtf_histogram")
