"""Alerts: per-series alert state, the alert history, hook runs.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_state",
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False, server_default=""),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("active_since", sa.BigInteger, nullable=False),
        sa.Column("fired_at", sa.BigInteger),
        sa.Column("value", sa.Float),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
        sa.Column("event_id", sa.Integer),
        sa.PrimaryKeyConstraint("rule", "labels", name="pk_alert_state"),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False, server_default=""),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("severity", sa.Text, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("since", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_alert_events_ts", "alert_events", ["ts"])
    op.create_table(
        "hook_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("hook", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("started", sa.BigInteger, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("output", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_hook_runs_event", "hook_runs", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_hook_runs_event", "hook_runs")
    op.drop_table("hook_runs")
    op.drop_index("ix_alert_events_ts", "alert_events")
    op.drop_table("alert_events")
    op.drop_table("alert_state")
