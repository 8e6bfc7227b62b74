"""Command center: indicator schemas, situation reports, aggregates, directives, alerts.

The public surface is re-exported here; modules are one concern each
(``schemas``, ``reports``, ``rollups``, ``aggregation``, ``exports``,
``directives``, ``alerts``, ``rules``) and ``runtime`` wires them into the
control server as ``runtime.services["command"]``.
"""

from diemcau.command.actors import Actor
from diemcau.command.aggregation import Aggregate, Aggregator
from diemcau.command.alerts import AlertService, AlertSpec, AlertView
from diemcau.command.directives import DirectiveIn, DirectiveService, DirectiveView
from diemcau.command.reports import FilingStatus, ReportChange, ReportService, ReportView
from diemcau.command.rules import AlertRules
from diemcau.command.runtime import CommandCenter, attach
from diemcau.command.schemas import Indicator, IndicatorSchema, SchemaRegistry, builtin_registry
from diemcau.command.targets import Target

__all__ = [
    "Actor",
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
    "attach",
    "builtin_registry",
]
