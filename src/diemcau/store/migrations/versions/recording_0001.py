"""recording: per-meeting policy and state, recorded segments, finished files, minutes

Revision ID: recording_0001
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "recording_0001"
down_revision = "0001"
branch_labels = ("recording",)
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recording_meetings",
        sa.Column("meeting_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("record_program", sa.Boolean(), nullable=False),
        sa.Column("record_inspections", sa.Boolean(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("processed_at", _TS, nullable=True),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("meeting_id", name="pk_recording_meetings"),
    )
    op.create_index("ix_recording_meetings_state", "recording_meetings", ["state"])
    op.create_table(
        "recording_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("folder", sa.String(300), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("feeds", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recording_segments"),
    )
    op.create_index(
        "ix_recording_segments_meeting_id_seq", "recording_segments", ["meeting_id", "seq"]
    )
    op.create_table(
        "recording_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("site_code", sa.String(32), nullable=True),
        sa.Column("site_name", sa.String(300), nullable=True),
        sa.Column("province_id", sa.Integer(), nullable=True),
        sa.Column("floor_id", sa.Integer(), nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("path", sa.String(400), nullable=False),
        sa.Column("timing", sa.JSON(), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("delete_after", _TS, nullable=True),
        sa.Column("deleted_at", _TS, nullable=True),
        sa.Column("deleted_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recording_files"),
    )
    op.create_index("ix_recording_files_meeting_id_kind", "recording_files", ["meeting_id", "kind"])
    op.create_index("ix_recording_files_province_id", "recording_files", ["province_id"])
    op.create_index("ix_recording_files_delete_after", "recording_files", ["delete_after"])
    op.create_table(
        "recording_minutes",
        sa.Column("meeting_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("edited_by", sa.String(200), nullable=False),
        sa.Column("edited_at", _TS, nullable=False),
        sa.Column("published_at", _TS, nullable=True),
        sa.Column("published_by", sa.String(200), nullable=True),
        sa.Column("conclusion_id", sa.Integer(), nullable=True),
        sa.Column("html_file_id", sa.Integer(), nullable=True),
        sa.Column("pdf_file_id", sa.Integer(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("meeting_id", name="pk_recording_minutes"),
    )


def downgrade() -> None:
    op.drop_table("recording_minutes")
    op.drop_index("ix_recording_files_delete_after", table_name="recording_files")
    op.drop_index("ix_recording_files_province_id", table_name="recording_files")
    op.drop_index("ix_recording_files_meeting_id_kind", table_name="recording_files")
    op.drop_table("recording_files")
    op.drop_index("ix_recording_segments_meeting_id_seq", table_name="recording_segments")
    op.drop_table("recording_segments")
    op.drop_index("ix_recording_meetings_state", table_name="recording_meetings")
    op.drop_table("recording_meetings")
