"""Who may do what: four roles, each a fixed set of permissions.

Endpoints ask for a permission, never for a role, so a role's reach is read in one place (here).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, including users and the audit log
    SUPERVISOR = "supervisor"  # watches the bot and the agents: live board, review, dashboard, desk
    AGENT = "agent"  # answers customers the bot handed over: desk, e-mail drafts
    OPERATOR = "operator"  # runs the service: campaigns, knowledge, dashboard, voice status


class Permission(StrEnum):
    DESK = "desk"  # the handoff queue: take, reply, hand back
    LIVE = "live"  # the live board: listen in, whisper, take over
    REVIEW = "review"  # conversation review, answer marks, knowledge-base gaps
    KNOWLEDGE = "knowledge"  # edit the knowledge base
    DASHBOARD = "dashboard"  # KPI figures
    CAMPAIGNS = "campaigns"  # outbound campaigns
    EMAIL = "email"  # e-mail drafts and messages
    VOICE_OPS = "voice_ops"  # SIP status, call and latency details
    USERS = "users"  # accounts and API tokens
    AUDIT = "audit"  # the audit log


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: frozenset(
        {
            Permission.DESK,
            Permission.LIVE,
            Permission.REVIEW,
            Permission.KNOWLEDGE,
            Permission.DASHBOARD,
            Permission.CAMPAIGNS,
            Permission.EMAIL,
            Permission.VOICE_OPS,
            Permission.AUDIT,
        }
    ),
    Role.AGENT: frozenset({Permission.DESK, Permission.EMAIL}),
    Role.OPERATOR: frozenset(
        {Permission.KNOWLEDGE, Permission.DASHBOARD, Permission.CAMPAIGNS, Permission.VOICE_OPS}
    ),
}


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]


def parse_role(value: str) -> Role:
    """A role from its name; InputError naming the four roles otherwise."""
    from voicebot.errors import InputError

    try:
        return Role(value.strip().lower())
    except ValueError:
        raise InputError(f"role must be one of {', '.join(r.value for r in Role)}, not {value!r}") from None
