"""Command center: indicator schemas, situation reports, directives, alerts."""
