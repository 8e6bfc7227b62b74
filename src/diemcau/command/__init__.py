"""Command center: indicator schemas, situation reports, aggregates, directives, alerts.

The public surface is re-exported here; modules are one concern each
(``schemas``, ``reports``, ``rollups``, ``aggregation``, ``exports``,
``directives``, ``alerts``, ``rules``); ``center`` builds them together as the
one `CommandCenter` the composition root (`diemcau.wiring`) gives the server,
and ``ports`` names what it needs from the hub and the meetings service.
"""

from diemcau.command.aggregation import Aggregate, Aggregator
from diemcau.command.alerts import AlertService, AlertSpec, AlertView
from diemcau.command.center import CommandCenter
from diemcau.command.directives import DirectiveIn, DirectiveService, DirectiveView
from diemcau.command.reports import FilingStatus, ReportChange, ReportService, ReportView
from diemcau.command.rules import AlertRules
from diemcau.command.schemas import Indicator, IndicatorSchema, SchemaRegistry, builtin_registry
from diemcau.command.targets import Target

__all__ = [
    "Aggregate",
    "Aggregator",
    "AlertRules",
    "AlertService",
    "AlertSpec",
    "AlertView",
    "CommandCenter",
    "DirectiveIn",
    "DirectiveService",
    "DirectiveView",
    "FilingStatus",
    "Indicator",
    "IndicatorSchema",
    "ReportChange",
    "ReportService",
    "ReportView",
    "SchemaRegistry",
    "Target",
    "builtin_registry",
]
