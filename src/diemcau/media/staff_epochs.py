"""Which staff accounts' media sessions to end, from two looks at their session epochs.

The media plane does not hear of a logout, a password change, a role change or an
account disabled: it looks at every account's session epoch (its token version,
`ports.StaffEpochs`) each credential poll and ends the Janus sessions of the
accounts whose epoch moved since the previous look (docs/media.md, "Who may
publish and watch"). Sessions opened under an epoch the plane has seen since it
started are current: the first look ends only the disabled accounts' sessions
(none should exist; a restart must not cut every staff member off).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Epochs", "sessions_ended"]

# Username → (token version, disabled), as `ports.StaffEpochs` reads them.
Epochs = Mapping[str, tuple[int, bool]]


def sessions_ended(before: Epochs | None, now: Epochs) -> set[str]:
    """The accounts whose media sessions must end, given the previous look (None: this
    is the first) and this one.

    An account ends when its epoch differs from the previous look (moved on, or a
    restored database moved it back), when it is disabled now and was not then (or
    is new and disabled already), and when it is gone. An account first seen enabled
    keeps its sessions: whatever it opened is of its current epoch.
    """
    if before is None:
        return {name for name, (_, disabled) in now.items() if disabled}
    ended = {name for name in before if name not in now}
    for name, (epoch, disabled) in now.items():
        was = before.get(name)
        if was is None:
            if disabled:
                ended.add(name)
        elif epoch != was[0] or (disabled and not was[1]):
            ended.add(name)
    return ended
