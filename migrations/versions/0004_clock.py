"""Clock-step-proof ages: each tick's monotonic stamp, and the boot it belongs to.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("head", sa.Column("mono", sa.BigInteger))
    op.create_table(
        "store_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_meta")
    with op.batch_alter_table("head") as batch:
        batch.drop_column("mono")
