"""inspection: inspections of sites, inspection rounds, their items and snapshots

Revision ID: inspection_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "inspection_0001"
down_revision = "0001"
branch_labels = ("inspection",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(48), nullable=False),
        sa.Column("site_name", sa.String(300), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("province_name", sa.String(300), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("inspector_name", sa.String(200), nullable=False),
        sa.Column("inspector_role", sa.String(32), nullable=False),
        sa.Column("inspector_user_id", sa.Integer(), nullable=True),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("round_item_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("requested_at", _TS, nullable=False),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("call_started_at", _TS, nullable=True),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.Column("call_seconds", sa.Float(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inspections"),
    )
    for column in ("site_id", "province_id", "round_id", "state", "requested_at"):
        op.create_index(f"ix_inspections_{column}", "inspections", [column])
    op.create_table(
        "inspection_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_rounds"),
    )
    op.create_index("ix_inspection_rounds_province_id", "inspection_rounds", ["province_id"])
    op.create_index("ix_inspection_rounds_created_at", "inspection_rounds", ["created_at"])
    op.create_table(
        "inspection_round_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("site_code", sa.String(48), nullable=False),
        sa.Column("site_name", sa.String(300), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("province_name", sa.String(300), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("inspection_id", sa.Integer(), nullable=True),
        sa.Column("answered", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inspection_round_items"),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["inspection_rounds.id"],
            name="fk_inspection_round_items_round_id_inspection_rounds",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "round_id", "position", name="uq_inspection_round_items_round_id_position"
        ),
        sa.UniqueConstraint(
            "round_id", "site_id", name="uq_inspection_round_items_round_id_site_id"
        ),
    )
    for column in ("round_id", "province_id", "decided_at"):
        op.create_index(f"ix_inspection_round_items_{column}", "inspection_round_items", [column])
    op.create_table(
        "inspection_snapshots",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("mime", sa.String(32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("taken_by", sa.String(64), nullable=False),
        sa.Column("taken_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("item_id", name="pk_inspection_snapshots"),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["inspection_round_items.id"],
            name="fk_inspection_snapshots_item_id_inspection_round_items",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("inspection_snapshots")
    op.drop_table("inspection_round_items")
    op.drop_table("inspection_rounds")
    op.drop_table("inspections")
