"""accounts: the key id of each site digest, a token version per staff account

Revision ID: accounts_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "accounts_0001"
down_revision = "0001"
branch_labels = ("accounts",)
depends_on = None


def upgrade() -> None:
    op.add_column("sites", sa.Column("secret_key_id", sa.String(16), nullable=True))
    op.add_column(
        "staff_users",
        sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("token_version")
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("secret_key_id")
