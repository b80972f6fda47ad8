"""dashboard sessions ended by logout

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ended_dashboard_sessions",
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sid_hash"),
    )
    op.create_index(
        op.f("ix_ended_dashboard_sessions_expires_at"),
        "ended_dashboard_sessions",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_ended_dashboard_sessions_expires_at"), table_name="ended_dashboard_sessions"
    )
    op.drop_table("ended_dashboard_sessions")
