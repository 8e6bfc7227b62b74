"""Online inspection (*kiểm tra trực tuyến*): look at any site now, call it, record it.

An authorised inspector asks to see a site; its terminal, on standby, publishes to its
relay at once, shows who is looking, and stops when the inspection ends. Inspections
become two-way calls, are planned in rounds with a verdict per site, and every one of
them — answered or not — is in the audit log (docs/inspection.md).
"""

from diemcau.inspection.service import InspectionService, Started

__all__ = ["InspectionService", "Started"]
