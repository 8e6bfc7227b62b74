"""Authentication: staff accounts, site credentials and session tokens.

The public surface lives in `diemcau.accounts.service`; import from there.
"""
