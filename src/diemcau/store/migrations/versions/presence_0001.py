"""presence: session log, durable messages, stream follows

Revision ID: presence_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "presence_0001"
down_revision = "0001"
branch_labels = ("presence",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rtt_ms", sa.Float(), nullable=True),
        sa.Column("loss_pct", sa.Float(), nullable=True),
        sa.Column("jitter_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_presence_events"),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_presence_events_site_id_sites",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_presence_events_site_id_at", "presence_events", ["site_id", "at"])
    op.create_table(
        "presence_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(96), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_presence_messages"),
        sa.UniqueConstraint("stream", "seq", name="uq_presence_messages_stream_seq"),
        sa.UniqueConstraint("stream", "msg_id", name="uq_presence_messages_stream_msg_id"),
    )
    op.create_table(
        "presence_follows",
        sa.Column("stream", sa.String(96), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("from_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "site_id", name="pk_presence_follows"),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_presence_follows_site_id_sites",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_presence_follows_site_id", "presence_follows", ["site_id"])


def downgrade() -> None:
    op.drop_table("presence_follows")
    op.drop_index("ix_presence_events_site_id_at", table_name="presence_events")
    op.drop_table("presence_events")
    op.drop_table("presence_messages")
