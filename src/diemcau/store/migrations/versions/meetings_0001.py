"""meetings: meetings, participants, attendance, floor, hands, conclusions, groups, audit log

Revision ID: meetings_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "meetings_0001"
down_revision = "0001"
branch_labels = ("meetings",)
depends_on = None

_TS = sa.DateTime(timezone=True)

_PG_AUDIT_GUARD = """
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("chair_user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("delegates", sa.JSON(), nullable=False),
        sa.Column("scheduled_start", _TS, nullable=True),
        sa.Column("scheduled_end", _TS, nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("reminder_lead_s", sa.Integer(), nullable=False),
        sa.Column("reminder_sent_at", _TS, nullable=True),
        sa.Column("late_after_s", sa.Integer(), nullable=False),
        sa.Column("invite_spec", sa.JSON(), nullable=False),
        sa.Column("invited_count", sa.Integer(), nullable=False),
        sa.Column("muted_all", sa.Boolean(), nullable=False),
        sa.Column("unmute_allowed", sa.Boolean(), nullable=False),
        sa.Column("floor_version", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meetings"),
        sa.ForeignKeyConstraint(
            ["chair_user_id"], ["staff_users.id"], name="fk_meetings_chair_user_id_staff_users"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["staff_users.id"],
            name="fk_meetings_created_by_user_id_staff_users",
        ),
    )
    op.create_index("ix_meetings_state", "meetings", ["state"])
    op.create_index("ix_meetings_chair_user_id", "meetings", ["chair_user_id"])

    op.create_table(
        "meeting_participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("wants_in", sa.Boolean(), nullable=False),
        sa.Column("first_joined_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_participants"),
        sa.UniqueConstraint(
            "meeting_id", "site_id", name="uq_meeting_participants_meeting_id_site_id"
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_participants_meeting_id_meetings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_meeting_participants_site_id_sites",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_meeting_participants_site_id", "meeting_participants", ["site_id"])

    op.create_table(
        "meeting_live_sites",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", name="pk_meeting_live_sites"),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_meeting_live_sites_site_id_sites",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_live_sites_meeting_id_meetings",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_meeting_live_sites_meeting_id", "meeting_live_sites", ["meeting_id"])

    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("joined_at", _TS, nullable=False),
        sa.Column("left_at", _TS, nullable=True),
        sa.Column("left_reason", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_attendance"),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_attendance_meeting_id_meetings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_meeting_attendance_site_id_sites",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_meeting_attendance_meeting_id_site_id", "meeting_attendance", ["meeting_id", "site_id"]
    )

    op.create_table(
        "meeting_hands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("raised_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_hands"),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_hands_meeting_id_meetings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_meeting_hands_site_id_sites", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_meeting_hands_meeting_id_closed_at", "meeting_hands", ["meeting_id", "closed_at"]
    )
    op.create_index(
        "ix_meeting_hands_open",
        "meeting_hands",
        ["meeting_id", "site_id"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )

    op.create_table(
        "meeting_floor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("granted_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_floor"),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_floor_meeting_id_meetings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name="fk_meeting_floor_site_id_sites", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_meeting_floor_meeting_id_revoked_at", "meeting_floor", ["meeting_id", "revoked_at"]
    )

    op.create_table(
        "meeting_conclusions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("published_at", _TS, nullable=False),
        sa.Column("published_by_user_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_meeting_conclusions"),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name="fk_meeting_conclusions_meeting_id_meetings",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["published_by_user_id"],
            ["staff_users.id"],
            name="fk_meeting_conclusions_published_by_user_id_staff_users",
        ),
    )
    op.create_index("ix_meeting_conclusions_meeting_id", "meeting_conclusions", ["meeting_id"])

    op.create_table(
        "meeting_conclusion_acks",
        sa.Column("conclusion_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("acked_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("conclusion_id", "site_id", name="pk_meeting_conclusion_acks"),
        sa.ForeignKeyConstraint(
            ["conclusion_id"],
            ["meeting_conclusions.id"],
            name="fk_meeting_conclusion_acks_conclusion_id_meeting_conclusions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name="fk_meeting_conclusion_acks_site_id_sites",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "site_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_site_groups"),
        sa.UniqueConstraint("name", name="uq_site_groups_name"),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["staff_users.id"],
            name="fk_site_groups_created_by_user_id_staff_users",
        ),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(300), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_index("ix_audit_log_meeting_id", "audit_log", ["meeting_id"])

    # The audit log is append-only in the database itself, not only in the API.
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_AUDIT_GUARD)
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()"
        )
    elif dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_refuse_change()")
    op.drop_table("audit_log")
    op.drop_table("site_groups")
    op.drop_table("meeting_conclusion_acks")
    op.drop_table("meeting_conclusions")
    op.drop_table("meeting_floor")
    op.drop_table("meeting_hands")
    op.drop_table("meeting_attendance")
    op.drop_table("meeting_live_sites")
    op.drop_table("meeting_participants")
    op.drop_table("meetings")
