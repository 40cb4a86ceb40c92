"""Maintenance jobs: one row per run.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("finished", sa.BigInteger),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("result", sa.Text, nullable=False, server_default="{}"),
        sa.Column("trigger", sa.Text, nullable=False, server_default="schedule"),
        sa.Column("slot", sa.BigInteger),
    )
    op.create_index("ix_job_runs_job_started", "job_runs", ["job", "started"])


def downgrade() -> None:
    op.drop_index("ix_job_runs_job_started", "job_runs")
    op.drop_table("job_runs")
