"""Edits made through the server's API (the run's last one in `runs.api_eseq`), and when a run's
live process last said it was alive (`runs.seen`).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("api_eseq", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("seen", sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("seen")
        batch.drop_column("api_eseq")
