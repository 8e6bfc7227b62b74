"""The composition root: builds every service of the control server once and connects them.

This is the one place that knows every service. Each is built with typed
constructor arguments; what one service needs from another is a small port owned
by the consumer (``meetings.ports``, ``command.ports``, ``media.ports``,
``inspection.ports``), and the
reactions between services are declared here, each once:

- a site request or a presence transition → meetings and the command center
  (they register their handlers on the presence hub);
- a floor decision, a program start or end in meetings → the media plane
  (`ProgramMedia`, which does nothing while no plane runs); a live meeting losing a
  delegate → the chair feed taken back from that person (`ProgramMedia.chair_lost`);
- a staff account's sessions ended (logout, password or role change, disabled; API
  or CLI) → the media plane, which follows every account's session epoch
  (`StaffEpochs` ← ``accounts.staff.session_epochs``), ends its Janus sessions;
- the media plane starting after a restart → the live meetings' floors restored
  into it (once, from `MeetingService.live_floors`);
- a media node down or back → a command-center alert raised or cleared;
- sites moved to another relay → told at once over the presence hub;
- a site's credential rotated or revoked by staff → its live session closed by the hub,
  and the old credential's media rights taken back by the media plane;
- a site dropping out of a live meeting → the command center's rule, which asks
  meetings for the live meeting ids;
- a program start, floor decision or end in meetings → the recording service (its
  live Janus recording; the finished meeting's post-processing), which records
  through the media plane's `ProgramRecorder`, builds timelines and minutes from
  meetings' history, sends the minutes out as a meetings conclusion and raises its
  disk and integrity alerts in the command center;
- a directive addressed to a saved site group → the command center asks meetings
  (which keeps the groups) for the group's sites;
- an inspector asks to see a site → inspection tells the site over the hub and takes
  grants from the media plane (`InspectionMediaPort`); a floor given to a site in an
  inspection call ends the call (the call must not reach the program);

- an answered inspection of a site in a live meeting → the recording service, which
  records it at central if the meeting's policy says so (`InspectionRecording`).

Start order: presence, meetings, command, media, recording, inspection (stop is the
reverse), so the media plane finds the meetings' state restored when it reconciles its
nodes, and inspections end (their sites told to stop publishing) before anything else
stops (docs/architecture.md).
"""

from __future__ import annotations

import os
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path

from diemcau.accounts.staff import session_epochs
from diemcau.actors import Actor
from diemcau.command.center import DEFAULT_TICK_S, CommandCenter
from diemcau.command.schemas import SchemaRegistry, builtin_registry
from diemcau.config import Settings
from diemcau.deploy.inventory import Inventory
from diemcau.directory.credentials import SiteCredentials
from diemcau.directory.sites import SiteDirectory
from diemcau.errors import Conflict, NotFound
from diemcau.inspection.ports import Grant
from diemcau.inspection.service import InspectionService
from diemcau.instance_keys import InstanceKeys, load_instance_keys
from diemcau.media.inspection import InspectionGrants
from diemcau.media.orchestrator import MediaError
from diemcau.media.ports import AlertSink, DeclaredNodes, LiveFloors, SiteNotifier, StaffEpochs
from diemcau.media.recording import ProgramRecorder
from diemcau.media.service import MediaPlaneService
from diemcau.meetings.conclusions import Attachment
from diemcau.meetings.history import MeetingHistory
from diemcau.meetings.ports import FloorDecision
from diemcau.meetings.service import MeetingService
from diemcau.presence.hub import PresenceConfig, PresenceHub
from diemcau.recording.config import RecordingConfig
from diemcau.recording.ports import DirectiveRecord
from diemcau.recording.service import RecordingService
from diemcau.runtime import Runtime
from diemcau.store import Database, migrate
from diemcau.tls.certs import ServerFiles
from diemcau.tls.settings import server_context_for

__all__ = [
    "InspectionMediaPort",
    "InspectionRecording",
    "ProgramMedia",
    "build_runtime",
    "wire",
    "command_schemas_from_env",
    "media_nodes_from_env",
    "presence_config_from_env",
]


class ProgramMedia:
    """The media side of a meeting as meetings sees it (its ``MediaPort``).

    Forwards program and floor changes to the media orchestrator while a plane runs;
    without one (control plane only) they are no-ops, so a meeting works without media.
    """

    def __init__(self, plane: MediaPlaneService) -> None:
        self._plane = plane

    async def start_program(self, meeting_id: int) -> None:
        orch = self._plane.orchestrator
        if orch is not None:
            await orch.start_program(meeting_id)

    async def stop_program(self, meeting_id: int) -> None:
        orch = self._plane.orchestrator
        if orch is not None:
            await orch.stop_program(meeting_id)

    async def set_floor(self, meeting_id: int, site_codes: Sequence[str]) -> None:
        orch = self._plane.orchestrator
        if orch is not None:
            await orch.set_floor(meeting_id, list(site_codes))

    async def chair_lost(self, meeting_id: int, usernames: Collection[str]) -> None:
        orch = self._plane.orchestrator
        if orch is not None:
            await orch.chair_lost(meeting_id, usernames)


class InspectionMediaPort:
    """The media side of an inspection as inspection sees it (its ``InspectionMedia``).

    Forwards to the running orchestrator's inspection grants; while no plane runs every
    call is refused with ``no_media``, and a site the plane cannot serve with
    ``no_media_grant`` (the API's answers for the other media grants too).
    """

    def __init__(self, plane: MediaPlaneService) -> None:
        self._plane = plane

    def _grants(self) -> InspectionGrants:
        orch = self._plane.orchestrator
        if orch is None:
            raise NotFound("no media service runs in this server", code="no_media")
        return InspectionGrants(orch)

    async def _call(
        self, what: Callable[[InspectionGrants], Awaitable[Mapping[str, object]]]
    ) -> Grant:
        try:
            return dict(await what(self._grants()))
        except MediaError as exc:
            raise Conflict(str(exc), code="no_media_grant") from exc

    async def watch_grant(self, site_code: str) -> Grant:
        return await self._call(lambda g: g.watch_grant(site_code))

    async def site_grant(self, site_code: str) -> Grant:
        return await self._call(lambda g: g.site_grant(site_code))

    async def call_grant(self, site_code: str) -> Grant:
        return await self._call(lambda g: g.call_grant(site_code))

    async def end_call(self, site_code: str) -> None:
        try:
            await self._grants().end_call(site_code)
        except MediaError as exc:
            raise Conflict(str(exc), code="no_media_grant") from exc

    async def wall_grants(self, site_codes: Sequence[str]) -> list[Grant]:
        try:
            return [dict(g) for g in await self._grants().wall_grants(site_codes)]
        except MediaError as exc:
            raise Conflict(str(exc), code="no_media_grant") from exc


def inspection_timing_from_env() -> tuple[float, float]:
    """(answer bound, lease) of inspections, seconds: ``DIEMCAU_INSPECTION_ANSWER_S``
    (default 30: a standby site that does not publish by then is *not answered*) and
    ``DIEMCAU_INSPECTION_LEASE_S`` (default 30: a console that stops renewing ends its
    inspections and wall pages)."""
    answer = float(os.environ.get("DIEMCAU_INSPECTION_ANSWER_S", "") or 30.0)
    lease = float(os.environ.get("DIEMCAU_INSPECTION_LEASE_S", "") or 30.0)
    return answer, lease


def presence_config_from_env(
    host: str,
    http_port: int,
    ssl: ssl_module.SSLContext | None = None,
    urls: Sequence[str] = (),
) -> PresenceConfig:
    """The site socket: its own port (``DIEMCAU_PRESENCE_PORT``, default the HTTP port
    + 1) on the HTTP bind address (``DIEMCAU_PRESENCE_HOST`` overrides it: where only
    TCP 443 gets through, sessions get their own address on port 443), in the same
    process and event loop. ``DIEMCAU_PRESENCE_URL`` overrides the URL announced to
    sites (behind a proxy). With a TLS context it speaks ``wss://`` only. `urls`: the
    site sockets of every server of a standby pair, in the order sites try them."""
    port_text = os.environ.get("DIEMCAU_PRESENCE_PORT", "")
    port = int(port_text) if port_text.strip() else (http_port + 1 if http_port else 0)
    return PresenceConfig(
        host=os.environ.get("DIEMCAU_PRESENCE_HOST", "") or host,
        port=port,
        public_url=os.environ.get("DIEMCAU_PRESENCE_URL", ""),
        urls=tuple(urls),
        ssl=ssl,
        tune_gc=True,
    )


def media_nodes_from_env() -> DeclaredNodes:
    """The nodes and TURN servers of the deployment inventory (``DIEMCAU_INVENTORY``,
    docs/deploy.md), or none declared there."""
    inventory = os.environ.get("DIEMCAU_INVENTORY", "")
    if not inventory:
        return None, ()
    inv = Inventory.load(Path(inventory))
    return inv.janus_nodes(), inv.turn_servers()


def command_schemas_from_env() -> SchemaRegistry:
    """The built-in indicator schemas, plus those in ``DIEMCAU_SCHEMAS_DIR`` if set."""
    schemas = builtin_registry()
    extra = os.environ.get("DIEMCAU_SCHEMAS_DIR", "").strip()
    if extra:
        schemas.load_dir(Path(extra))
    return schemas


def _media_enabled(settings: Settings) -> bool:
    return (
        settings.media_relays > 0
        or bool(os.environ.get("DIEMCAU_MEDIA_NODES"))
        or bool(os.environ.get("DIEMCAU_INVENTORY"))
    )


def _media_plane(
    settings: Settings,
    sites: SiteDirectory,
    *,
    floors: LiveFloors,
    notifier: SiteNotifier,
    alerts: AlertSink,
    staff: StaffEpochs,
) -> MediaPlaneService:
    tls = ServerFiles(Path(settings.tls_cert), Path(settings.tls_key)) if settings.tls else None
    return MediaPlaneService(
        sites,
        enabled=_media_enabled(settings),
        local_relays=settings.media_relays,
        base_dir=settings.data_dir / "janus",
        declared=media_nodes_from_env,
        tls=tls,
        floors=floors,
        notifier=notifier,
        alerts=alerts,
        staff=staff,
    )


class MinutesConclusion:
    """Recording's `ConclusionPublisher`: the minutes go out as a meetings conclusion."""

    def __init__(self, meetings: MeetingService) -> None:
        self._meetings = meetings

    async def __call__(
        self, actor: Actor, meeting_id: int, body: str, attachments: Sequence[Mapping[str, object]]
    ) -> int:
        view = await self._meetings.conclusions.publish(
            actor, meeting_id, body, [Attachment.model_validate(dict(a)) for a in attachments]
        )
        return view.id


def _recording(
    settings: Settings,
    db: Database,
    key: bytes,
    clock: Callable[[], float],
    *,
    sites: SiteDirectory,
    meetings: MeetingService,
    command: CommandCenter,
    media_plane: MediaPlaneService,
) -> RecordingService:
    """The recording service over its ports; it follows every floor decision."""

    async def directives(since: datetime, until: datetime) -> list[DirectiveRecord]:
        found: list[DirectiveRecord] = []
        before: int | None = None
        while True:
            page = await command.directives.list_directives(
                Actor.system(), limit=500, before_id=before
            )
            found += [d for d in page if since <= d.issued_at < until]
            if len(page) < 500 or page[-1].issued_at < since:
                return sorted(found, key=lambda d: d.issued_at)
            before = page[-1].id

    recording = RecordingService(
        db,
        RecordingConfig.from_env(settings.data_dir),
        sites=sites,
        history=MeetingHistory(db),
        recorder=ProgramRecorder(lambda: media_plane.orchestrator),
        publish_conclusion=MinutesConclusion(meetings),
        directives=directives,
        alerts=command.alerts,
        clock=clock,
        key=key,
    )
    meetings.floor.add_floor_listener(recording.on_program_change)
    return recording


class InspectionRecording:
    """Recording's side of an inspection (inspection's ``RecordingHook``).

    An answered inspection of a site in a live meeting is recorded at central when the
    meeting's policy says so; inspection writes its own audit rows, so recording is
    asked not to add one. Recording keeps one inspection per meeting: ending an older
    one leaves a newer one's recording running.
    """

    def __init__(self, recording: RecordingService) -> None:
        self._recording = recording
        self._latest: dict[int, int] = {}  # meeting id -> inspection id being recorded

    async def inspection_started(
        self, actor: Actor, site_code: str, inspection_id: int, meeting_id: int | None
    ) -> bool:
        if meeting_id is None:
            return False
        kept = await self._recording.on_spot_check(actor, site_code, audited=False)
        if kept:
            self._latest[meeting_id] = inspection_id
        return kept

    async def inspection_ended(self, inspection_id: int, meeting_id: int | None) -> None:
        if meeting_id is not None and self._latest.get(meeting_id) == inspection_id:
            del self._latest[meeting_id]
            await self._recording.end_spot_check(meeting_id)


def _inspection(
    db: Database,
    sites: SiteDirectory,
    clock: Callable[[], float],
    *,
    presence: PresenceHub,
    meetings: MeetingService,
    media_plane: MediaPlaneService,
    recording: RecordingService,
) -> InspectionService:
    """Online inspection, its site requests, and the floor listener that ends a call."""
    answer_s, lease_s = inspection_timing_from_env()
    inspection = InspectionService(
        db,
        sites,
        presence=presence,
        media=InspectionMediaPort(media_plane),
        # The mirror is replaced on reload: look it up at each call.
        live_meeting_of=lambda site_id: meetings.store.live_site_meeting.get(site_id),
        floor_sites=meetings.live_floors,
        recording=InspectionRecording(recording),
        clock=clock,
        answer_timeout_s=answer_s,
        lease_s=lease_s,
    )
    inspection.register()

    async def floor_to_inspection(decision: FloorDecision) -> None:
        await inspection.floor_changed(decision.speaker_codes)

    meetings.floor.add_floor_listener(floor_to_inspection)
    return inspection


async def build_runtime(settings: Settings, *, clock: Callable[[], float] = time.time) -> Runtime:
    """Migrate the store and open it, then `wire` every service (none is started yet)."""
    url = settings.resolved_database_url()
    await migrate(url)
    db = Database(url)
    keys = await load_instance_keys(settings, db)
    return wire(settings, db, keys, clock=clock)


def wire(
    settings: Settings,
    db: Database,
    keys: InstanceKeys,
    *,
    clock: Callable[[], float] = time.time,
) -> Runtime:
    """Build every service once over an open store and connect them (the reactions above)."""
    sites = SiteDirectory(db)
    presence = PresenceHub(
        db,
        keys,
        presence_config_from_env(
            settings.host,
            settings.port,
            server_context_for(settings),
            settings.presence_urls,
        ),
        clock=clock,
        sites=sites,
    )

    # Command and media need meetings' state at run time, and meetings drives media:
    # the questions below are asked of `meetings` (built last) only once running.
    async def live_meeting_ids() -> list[int]:
        return [m.id for m in await meetings.store.list_meetings(state="live")]

    async def live_floors() -> dict[int, list[str]]:
        return await meetings.live_floors()

    async def group_sites(group_id: int) -> Collection[int]:
        return await meetings.groups.site_ids(group_id)

    command = CommandCenter(
        db,
        clock,
        command_schemas_from_env(),
        hub=presence,
        live_meetings=live_meeting_ids,
        group_sites=group_sites,
        key=keys.links,
        sites=sites,
        tick_s=float(os.environ.get("DIEMCAU_COMMAND_TICK_S", "") or DEFAULT_TICK_S),
    )

    async def staff_epochs() -> dict[str, tuple[int, bool]]:
        return await session_epochs(db)

    media_plane = _media_plane(
        settings,
        sites,
        floors=live_floors,
        notifier=presence,
        alerts=command.alerts,
        staff=staff_epochs,
    )
    program_media = ProgramMedia(media_plane)
    meetings = MeetingService(db, presence, clock=clock, media=program_media, sites=sites)
    meetings.register()
    command.register()
    recording = _recording(
        settings,
        db,
        # Watch tickets are short-lived and signed with a key derived from the current
        # token key (never the token key itself); a rotation ends the tickets out.
        keys.token.current,
        clock,
        sites=sites,
        meetings=meetings,
        command=command,
        media_plane=media_plane,
    )
    inspection = _inspection(
        db,
        sites,
        clock,
        presence=presence,
        meetings=meetings,
        media_plane=media_plane,
        recording=recording,
    )

    async def credentials_changed(site_ids: Collection[int]) -> Collection[int]:
        closed = await presence.credentials_changed(site_ids)
        await media_plane.credentials_changed(site_ids)
        return closed

    credentials = SiteCredentials(
        sites,
        keys.site,
        public_url=settings.resolved_public_url(),
        close_sessions=credentials_changed,
    )
    return Runtime(
        settings=settings,
        db=db,
        keys=keys,
        clock=clock,
        sites=sites,
        credentials=credentials,
        presence=presence,
        meetings=meetings,
        command=command,
        media_plane=media_plane,
        recording=recording,
        inspection=inspection,
        lifecycle=(presence, meetings, command, media_plane, recording, inspection),
    )
