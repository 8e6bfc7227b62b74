"""The services behind the staff pages' routes, built once per running server.

The command center's own services (reports, directives, alerts) live in
``runtime.services["command"]``; the pages also need attachments, the compose
form's audience count, the tracking tables, the completeness table and the
rankings, which read the directory's site model. They are assembled here, on
first use, from what the runtime already holds, and kept beside the other
services (``runtime.services["pages"]``) so every request shares one set.
The caller's identity reaches them as the shared `Actor`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from diemcau.accounts.service import SitePrincipal, StaffPrincipal
from diemcau.actors import Actor
from diemcau.command.alert_board import AlertBoard
from diemcau.command.audience import Audience
from diemcau.command.completeness import Completeness
from diemcau.command.files import DirectiveFiles
from diemcau.command.rankings import Rankings
from diemcau.command.runtime import CommandCenter
from diemcau.command.series_tables import SeriesTables
from diemcau.command.tracking import DirectiveBoard
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import NotFound
from diemcau.meetings.service import MeetingService
from diemcau.runtime import Runtime

__all__ = ["PageServices", "actor_of", "center", "page_services"]


def actor_of(principal: StaffPrincipal | SitePrincipal) -> Actor:
    """The authenticated principal as the actor every service checks."""
    if isinstance(principal, SitePrincipal):
        return Actor.for_site(principal.site_id, principal.code, principal.province_id)
    return Actor.for_staff(
        principal.username, principal.role, principal.province_id, user_id=principal.user_id
    )


def center(runtime: Runtime) -> CommandCenter:
    found = runtime.services.get("command")
    if not isinstance(found, CommandCenter):
        raise NotFound("the command center is not running in this server", code="no_command")
    return found


@dataclass(frozen=True)
class PageServices:
    center: CommandCenter
    sites: SiteDirectory
    files: DirectiveFiles
    audience: Audience
    board: DirectiveBoard
    completeness: Completeness
    rankings: Rankings
    series: SeriesTables
    alerts: AlertBoard


def _sites(runtime: Runtime) -> SiteDirectory:
    found = runtime.services.get("sites")
    if isinstance(found, SiteDirectory):
        return found
    sites = SiteDirectory(runtime.db)
    runtime.services["sites"] = sites
    return sites


def page_services(runtime: Runtime) -> PageServices:
    """The page services of this runtime (built on first use)."""
    found = runtime.services.get("pages")
    if isinstance(found, PageServices):
        return found
    cc = center(runtime)
    sites = _sites(runtime)

    async def members(group_id: int) -> Collection[int]:
        meetings = runtime.services.get("meetings")
        if not isinstance(meetings, MeetingService):
            raise NotFound("the meetings service is not running in this server")
        return await meetings.groups.site_ids(group_id)

    built = PageServices(
        center=cc,
        sites=sites,
        files=DirectiveFiles(runtime.db, runtime.key, runtime.clock),
        audience=Audience(runtime.db, sites, members),
        board=DirectiveBoard(runtime.db, cc.directives, sites),
        completeness=Completeness(runtime.db, cc.reports, cc.aggregator, sites),
        rankings=Rankings(runtime.db, cc.schemas, cc.aggregator, sites),
        series=SeriesTables(cc.aggregator, cc.reports),
        alerts=AlertBoard(runtime.db, cc.alerts, sites),
    )
    runtime.services["pages"] = built
    return built
