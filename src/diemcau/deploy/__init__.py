"""Deployments described by one inventory file: nodes, TURN, secrets by reference.

`inventory` reads and validates the file; `render` writes each host's
configuration (Janus, coturn, systemd units) from it; `cli` is
``diemcau deploy render``. The control server reads the same file
(``DIEMCAU_INVENTORY``) for its media nodes and TURN servers.
"""
