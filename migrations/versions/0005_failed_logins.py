"""failed dashboard logins, counted by every process

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "failed_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_failed_logins_address_failed_at",
        "failed_logins",
        ["address", "failed_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_failed_logins_address_failed_at", table_name="failed_logins")
    op.drop_table("failed_logins")
