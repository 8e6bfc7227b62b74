"""command: directive attachments kept by the server, schemas added at run time, alert notes

Revision ID: command_0002
Revises: command_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "command_0002"
down_revision = "command_0001"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "command_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("mime", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.String(120), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_files"),
    )
    op.create_table(
        "command_custom_schemas",
        sa.Column("key", sa.String(48), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(120), nullable=False),
        sa.Column("added_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_command_custom_schemas"),
    )
    with op.batch_alter_table("command_alerts") as batch:
        batch.add_column(sa.Column("acknowledge_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("command_alerts") as batch:
        batch.drop_column("acknowledge_note")
    op.drop_table("command_custom_schemas")
    op.drop_table("command_files")
