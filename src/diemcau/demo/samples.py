"""Command-center content for the demo: a few situation reports and one directive.

Filed through the command center's services with a site's and the chair's actor, as
the site terminals and the dashboard would, so the dashboard has something to show.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from diemcau.accounts.service import StaffPrincipal
from diemcau.command.directives import DirectiveIn
from diemcau.command.targets import Target
from diemcau.demo.output import say
from diemcau.demo.services import CommandCenter, command_site_actor, command_staff_actor
from diemcau.demo.sites import DemoSite

__all__ = ["file_samples"]

REPORTS = 8


async def file_samples(
    command: CommandCenter, chair: StaffPrincipal, sites: Sequence[DemoSite]
) -> None:
    """File up to eight disaster reports from sites spread over the list; issue one directive."""
    rng = random.Random(2025)  # noqa: S311 - sample figures, not security
    filed = 0
    communes = [s for s in sites if s.kind != "chair"]
    for site in communes[:: max(1, len(sites) // REPORTS)][:REPORTS]:
        values = {
            "people_evacuated": rng.randint(0, 400),
            "houses_damaged": rng.randint(0, 60),
            "deaths": 0,
            "urgent_needs": "Nước sạch, áo phao",
        }
        await command.reports.submit(
            command_site_actor(site.site_id, site.code), "disaster", values
        )
        filed += 1
    await command.directives.issue_directive(
        command_staff_actor(chair),
        DirectiveIn(
            title="Báo cáo tình hình mưa lũ trước 17 giờ",
            body="Các điểm cầu báo cáo số hộ sơ tán, nhà hư hỏng và nhu cầu cấp bách.",
            priority="high",
            target=Target(country=True),
        ),
    )
    say(f"command center: {filed} situation reports filed, one directive to every site")
