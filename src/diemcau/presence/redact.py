"""What a province officer may see of a national staff event: its own province's sites only.

Events of one province reach only that province's officers; national events
(``province_id: null`` — a meeting started, the floor changed, a hand raised) reach
every officer, but they can name sites of any province (the speakers, the queue). A
province officer may not see other provinces' sites (docs/security.md, "Who may do
what"), so its copy of a national event is redacted: every object inside it that
names a site of another province — by ``province_id``, by ``site_id`` or by a known
site ``code`` — is removed (from a list) or replaced by null. An event whose whole
body is such an object is not sent at all. The rule is generic on purpose: a service
that publishes a new event kind is redacted the same way without knowing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from diemcau.records import JsonObject

__all__ = ["DROP", "Drop", "redact_for_province"]


class Drop:
    """The type of `DROP`: what is left of an object naming another province's site."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()
_CODE_KEYS = ("code", "site_code")


def _foreign(
    obj: Mapping[str, object],
    scope: int,
    province_of_site: Callable[[int], int | None],
    province_of_code: Callable[[str], int | None | Drop],
) -> bool:
    """Whether `obj` names a site (or a province) other than `scope`'s own."""
    pid = obj.get("province_id")
    if isinstance(pid, int) and not isinstance(pid, bool):
        return pid != scope
    sid = obj.get("site_id")
    if isinstance(sid, int) and not isinstance(sid, bool):
        return province_of_site(sid) != scope
    for key in _CODE_KEYS:
        code = obj.get(key)
        if isinstance(code, str):
            found = province_of_code(code)
            if not isinstance(found, Drop):  # a known site code
                return found != scope
    return False


def redact_for_province(
    body: object,
    scope: int,
    province_of_site: Callable[[int], int | None],
    province_of_code: Callable[[str], int | None | Drop],
) -> object:
    """`body` without anything naming another province's sites; `DROP` if nothing is left.

    Args:
        body: a JSON-like value (dicts, lists, scalars).
        scope: the officer's province id.
        province_of_site: a site id's province (None: unknown or none).
        province_of_code: a site code's province, or `DROP` for a string that is no
            site code.
    """
    if isinstance(body, Mapping):
        if _foreign(body, scope, province_of_site, province_of_code):
            return DROP
        out: JsonObject = {}
        for key, value in body.items():
            kept = redact_for_province(value, scope, province_of_site, province_of_code)
            out[key] = None if kept is DROP else kept
        return out
    if isinstance(body, list | tuple):
        items = (redact_for_province(v, scope, province_of_site, province_of_code) for v in body)
        return [v for v in items if v is not DROP]
    return body
