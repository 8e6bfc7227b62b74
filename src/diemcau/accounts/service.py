"""The one surface other packages import from accounts (pinned by tests/test_accounts_service.py).

Who may act: staff accounts and site credentials. Each concern lives in its own
module and is re-exported here, so callers need not know the split:

* `accounts.errors`: the refusals (`AccountError` and its kinds);
* `accounts.principals`: who a credential proved to be (`StaffPrincipal`, `SitePrincipal`);
* `accounts.staff`: staff accounts (create, list, log in with an argon2 password, disable);
* `accounts.staff_sessions`: ending an account's sessions (logout, password change);
* `accounts.join_codes`: the ``"<site code>:<secret>"`` join code and its link;
* `accounts.site_credentials`: site credentials in the store (check, load, rotate, revoke);
* `accounts.tokens`: session and device tokens.

Two kinds of principal exist (docs/provisioning.md; docs/architecture.md, "Credentials
fit the scale"): staff log in with a username and a password hashed with argon2 (slow
on purpose, run in a worker thread); sites log in with a join code whose 160-bit
secret is stored as a keyed digest, checked in microseconds, so every site of the
country can join at once.
"""

from __future__ import annotations

from diemcau.accounts.errors import (
    AccountError,
    DuplicateUsername,
    InvalidDisplayName,
    InvalidUsername,
    ProvinceNotAllowed,
    ProvinceRequired,
    UnknownProvince,
    UnknownRole,
    UnknownSite,
    UnknownStaff,
    WeakPassword,
)
from diemcau.accounts.join_codes import (
    join_code,
    join_link,
    match_join_code,
    split_join_code,
    verify_join_code,
)
from diemcau.accounts.principals import Principal, SitePrincipal, StaffPrincipal
from diemcau.accounts.site_credentials import (
    authenticate_site,
    load_site_digests,
    rekey_site_digests,
    revoke_site,
    rotate_site,
)
from diemcau.accounts.staff import (
    MIN_PASSWORD_LENGTH,
    StaffAccount,
    authenticate_staff,
    create_staff,
    disable_staff,
    enable_staff,
    list_staff,
)
from diemcau.accounts.staff_sessions import change_password, end_staff_sessions
from diemcau.accounts.tokens import (
    check_session_token,
    device_of,
    issue_device_token,
    issue_session_token,
    principal_from_token,
)

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "AccountError",
    "DuplicateUsername",
    "InvalidUsername",
    "InvalidDisplayName",
    "UnknownRole",
    "WeakPassword",
    "ProvinceRequired",
    "ProvinceNotAllowed",
    "UnknownProvince",
    "UnknownStaff",
    "UnknownSite",
    "StaffPrincipal",
    "SitePrincipal",
    "Principal",
    "StaffAccount",
    "create_staff",
    "authenticate_staff",
    "list_staff",
    "disable_staff",
    "enable_staff",
    "end_staff_sessions",
    "change_password",
    "issue_device_token",
    "device_of",
    "join_code",
    "join_link",
    "split_join_code",
    "authenticate_site",
    "load_site_digests",
    "verify_join_code",
    "match_join_code",
    "rekey_site_digests",
    "rotate_site",
    "revoke_site",
    "issue_session_token",
    "principal_from_token",
    "check_session_token",
]
