"""answers keep the model's reasoning and whether its stated answer agrees with the argmax

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("elicitations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reasoning", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("answer_agrees", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("elicitations", schema=None) as batch_op:
        batch_op.drop_column("answer_agrees")
        batch_op.drop_column("reasoning")
