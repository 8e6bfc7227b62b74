"""Authentication: staff accounts, site credentials and session tokens.

The public surface lives in `diemcau.accounts.service`; `actor_of` (in
`diemcau.accounts.actors`) turns an authenticated principal into an `Actor`.
"""

from diemcau.accounts.actors import actor_of

__all__ = ["actor_of"]
