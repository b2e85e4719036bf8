"""Dashboard figures on conversations: the main intent, the handoff reason, when it ended, how long
the bot handled it, who the customer is (for repeat contacts) and whether they came back; an index
for per-action audit look-ups (the voice latency of each turn); the daily rollups the dashboard
reads (sums, histogram bins, handoff reasons per day) and which days are up to date.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("intent", "handoff_reason", "ended_at", "handle_ms", "contact_key", "came_back")
_SUMS = (
    "conversations",
    "answered",
    "deflected",
    "handed",
    "csat_sum",
    "csat_n",
    "csat_1",
    "csat_2",
    "csat_3",
    "csat_4",
    "csat_5",
    "closed",
    "came_back",
    "bot_handle_sum",
    "bot_handle_n",
    "human_handle_sum",
    "human_handle_n",
)  # fmt: skip (as voicebot.storage.tables.DASHBOARD_SUMS at this revision)


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("intent", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("handoff_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("handle_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("contact_key", sa.String(length=330), nullable=True))
        batch_op.add_column(sa.Column("came_back", sa.Boolean(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_conversations_tenant_id_contact_key_created_at"),
            ["tenant_id", "contact_key", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_conversations_tenant_id_updated_at"), ["tenant_id", "updated_at"], unique=False
        )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_log_tenant_id_action_at"), ["tenant_id", "action", "at"], unique=False
        )
    op.create_table(
        "dashboard_days",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", name=op.f("pk_dashboard_days")),
    )
    op.create_table(
        "dashboard_state",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_dashboard_state")),
    )
    op.create_table(
        "dashboard_daily",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("intent", sa.String(length=100), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in _SUMS),
        sa.PrimaryKeyConstraint("tenant_id", "day", "channel", "intent", name=op.f("pk_dashboard_daily")),
    )
    op.create_table(
        "dashboard_histogram",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=16), nullable=False),
        sa.Column("dim", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("bin", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "metric", "dim", "day", "channel", "key", "bin", name=op.f("pk_dashboard_histogram")
        ),
    )
    op.create_table(
        "dashboard_reasons",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", "channel", "reason", name=op.f("pk_dashboard_reasons")),
    )


def downgrade() -> None:
    for table in (
        "dashboard_reasons",
        "dashboard_histogram",
        "dashboard_daily",
        "dashboard_state",
        "dashboard_days",
    ):
        op.drop_table(table)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_tenant_id_action_at"))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_tenant_id_updated_at"))
        batch_op.drop_index(batch_op.f("ix_conversations_tenant_id_contact_key_created_at"))
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
