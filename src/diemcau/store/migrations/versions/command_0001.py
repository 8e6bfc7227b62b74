"""command: situation reports with revisions and rollups, directives with recipients, alerts

Revision ID: command_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "command_0001"
down_revision = "0001"
branch_labels = ("command",)
depends_on = None

_TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "command_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schema_key", sa.String(48), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(120), nullable=False),
        sa.Column("submitted_at", _TZ, nullable=False),
        sa.Column("updated_by", sa.String(120), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_reports"),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_command_reports_site_id_sites", ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "schema_key", "period", "site_id", name="uq_command_reports_schema_key_period_site_id"
        ),
    )
    op.create_index("ix_command_reports_site_id", "command_reports", ["site_id"])

    op.create_index(
        "ix_command_reports_schema_key_period_province_id",
        "command_reports",
        ["schema_key", "period", "province_id"],
    )

    op.create_table(
        "command_rollups",
        sa.Column("schema_key", sa.String(48), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=False),
        sa.Column("indicator", sa.String(48), nullable=False),
        sa.Column("bucket", sa.String(48), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "schema_key",
            "period",
            "province_id",
            "indicator",
            "bucket",
            name="pk_command_rollups",
        ),
    )

    op.create_table(
        "command_report_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("changed_by", sa.String(120), nullable=False),
        sa.Column("changed_at", _TZ, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_report_revisions"),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["command_reports.id"],
            name="fk_command_report_revisions_report_id_command_reports",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "report_id", "revision", name="uq_command_report_revisions_report_id_revision"
        ),
    )
    op.create_index(
        "ix_command_report_revisions_report_id", "command_report_revisions", ["report_id"]
    )

    op.create_table(
        "command_directives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("deadline", _TZ, nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("issued_by", sa.String(120), nullable=False),
        sa.Column("issuer_province_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", _TZ, nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("last_reminded_at", _TZ, nullable=True),
        sa.Column("escalated_at", _TZ, nullable=True),
        sa.Column("recipients_count", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_command_directives"),
        sa.UniqueConstraint("client_id", name="uq_command_directives_client_id"),
    )

    op.create_table(
        "command_directive_recipients",
        sa.Column("directive_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("delivered_at", _TZ, nullable=True),
        sa.Column("acknowledged_at", _TZ, nullable=True),
        sa.Column("completed_at", _TZ, nullable=True),
        sa.Column("completion_note", sa.Text(), nullable=False),
        sa.Column("reminded", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("directive_id", "site_id", name="pk_command_directive_recipients"),
        sa.ForeignKeyConstraint(
            ["directive_id"],
            ["command_directives.id"],
            name="fk_command_directive_recipients_directive_id_command_directives",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_command_directive_recipients_site_id_sites",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_command_directive_recipients_site_id", "command_directive_recipients", ["site_id"]
    )
    op.create_index(
        "ix_command_directive_recipients_province",
        "command_directive_recipients",
        ["directive_id", "province_id"],
    )

    op.create_table(
        "command_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("message_vi", sa.Text(), nullable=False),
        sa.Column("message_en", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("raised_at", _TZ, nullable=False),
        sa.Column("last_seen_at", _TZ, nullable=False),
        sa.Column("cleared_at", _TZ, nullable=True),
        sa.Column("acknowledged_at", _TZ, nullable=True),
        sa.Column("acknowledged_by", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_command_alerts"),
    )
    op.create_index("ix_command_alerts_kind_key", "command_alerts", ["kind", "key"])
    op.create_index("ix_command_alerts_active", "command_alerts", ["cleared_at", "province_id"])
    op.create_index(
        "uq_command_alerts_active_condition",
        "command_alerts",
        ["kind", "key"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("command_alerts")
    op.drop_table("command_directive_recipients")
    op.drop_table("command_directives")
    op.drop_table("command_report_revisions")
    op.drop_table("command_rollups")
    op.drop_table("command_reports")
