"""An open inspection as the service follows it between its request and its end."""

from __future__ import annotations

from dataclasses import dataclass

from diemcau.actors import Actor
from diemcau.directory.sites import SiteInfo
from diemcau.inspection.views import InspectionView
from diemcau.inspection.watch import Looker

__all__ = ["SYSTEM", "LiveInspection"]

# Who ends what nobody ended: deadlines, leases, the floor, a stop.
SYSTEM = Actor.system("inspection")


@dataclass
class LiveInspection:
    """The latest view of an open inspection, its look at the site and its two clocks."""

    view: InspectionView
    actor: Actor
    site: SiteInfo
    looker: Looker
    deadline: float  # loop time by which the site must publish
    lease_until: float  # loop time by which the console must renew
