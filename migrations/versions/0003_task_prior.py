"""tasks may set a target class prior (null, "estimate" or {label: share}); recent traffic index

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prior", sa.JSON(), nullable=True))
    op.create_index(
        "ix_calibration_requests_task_created",
        "calibration_requests",
        ["task_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_calibration_requests_task_created", table_name="calibration_requests")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("prior")
