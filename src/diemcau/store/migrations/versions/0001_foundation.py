"""foundation: settings, units, sites, staff users

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = ("foundation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("search_key", sa.String(200), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("unit_type", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("dataset", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_units"),
        sa.UniqueConstraint("code", name="uq_units_code"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["units.id"], name="fk_units_parent_id_units", ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(["province_id"], ["units.id"], name="fk_units_province_id_units"),
    )
    op.create_index("ix_units_search_key", "units", ["search_key"])
    op.create_index("ix_units_level", "units", ["level"])
    op.create_index("ix_units_parent_id", "units", ["parent_id"])
    op.create_index("ix_units_province_id", "units", ["province_id"])
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(48), nullable=False),
        sa.Column("name", sa.String(240), nullable=False),
        sa.Column("search_key", sa.String(240), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("secret_digest", sa.String(64), nullable=True),
        sa.Column("credential_version", sa.Integer(), nullable=False),
        sa.Column("credential_issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sites"),
        sa.UniqueConstraint("code", name="uq_sites_code"),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name="fk_sites_unit_id_units", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["province_id"], ["units.id"], name="fk_sites_province_id_units"),
    )
    op.create_index("ix_sites_search_key", "sites", ["search_key"])
    op.create_index("ix_sites_unit_id", "sites", ["unit_id"])
    op.create_index("ix_sites_province_id", "sites", ["province_id"])
    op.create_index("ix_sites_kind", "sites", ["kind"])
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_users"),
        sa.UniqueConstraint("username", name="uq_staff_users_username"),
        sa.ForeignKeyConstraint(
            ["province_id"], ["units.id"], name="fk_staff_users_province_id_units"
        ),
    )


def downgrade() -> None:
    op.drop_table("staff_users")
    op.drop_table("sites")
    op.drop_table("units")
    op.drop_table("settings")
