"""``diemcau demo``: a live national meeting on one machine, in one command (docs/demo.md).

| module | its one concern |
|---|---|
| `cli` | the command line (options, help) |
| `run` | one run: store, Janus, server, the meeting's cast, a clean stop |
| `prepare` | a fresh store with the directory, credentials and staff |
| `janus` | the local Janus processes, declared to the server as its media nodes |
| `sites` | which site plays which part (media, left for a person, simulated) |
| `children` | the child processes, started and ended by PID |
| `child` | what runs inside a child: simulated sites and their media bots |
| `publishers` | one bot kept publishing with grants fetched like a browser's |
| `chair` | the chair's feed lent to a bot until a person opens the console |
| `floor` | the floor rotation among the media sites |
| `samples` | situation reports and a directive for the dashboard |
| `status` | the status line every 10 s |
| `output` | timestamped lines, the welcome text, ``demo.json`` |
| `services` | the typed view of the running server (the one adapter) |
"""

from diemcau.demo.cli import register
from diemcau.demo.sites import DemoSite, pick_media_sites

__all__ = ["DemoSite", "pick_media_sites", "register"]
