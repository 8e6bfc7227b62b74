"""The older command-center actor, for services that still take it.

New modules take the shared `diemcau.actors.Actor`; the command services written
before it (reports, directives, alerts, aggregation) still take
`command.actors.Actor`, which carries the same facts. `legacy_actor` converts one
into the other at those calls only; once those services take the shared actor
(issue 10), this module and its calls go.
"""

from __future__ import annotations

from diemcau.actors import Actor
from diemcau.command.actors import Actor as CommandActor

__all__ = ["legacy_actor"]


def legacy_actor(actor: Actor) -> CommandActor:
    """The same caller as the older command services expect it."""
    if actor.kind == "site":
        assert actor.site_id is not None
        return CommandActor.for_site(actor.site_id, actor.name)
    if actor.kind == "system":
        return CommandActor.system()
    return CommandActor.for_staff(actor.name, actor.role, actor.province_id, user_id=actor.user_id)
