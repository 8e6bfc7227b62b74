"""``diemcau tls ...``: create a lab CA and server certificates, check certificate files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diemcau.cliargs import bounded_int
from diemcau.tls.certs import LabCA
from diemcau.tls.context import TlsError, check_server_files, spki_sha256

__all__ = ["register"]


def _lab_ca(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        ca = LabCA.open_or_create(out)
        print(f"CA: {ca.cert_path} (install it as trusted on every browser of the network)")
        for spec in args.server:
            names = [n.strip() for n in spec.split(",") if n.strip()]
            files = ca.issue(names, out, days=args.days)
            print(f"server {names[0]}: {files.cert} {files.key} spki={spki_sha256(files.cert)}")
    except TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        leaf = check_server_files(Path(args.cert), Path(args.key))
    except TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"ok: {leaf.subject.rfc4514_string()} valid until {leaf.not_valid_after_utc:%Y-%m-%d}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tls = sub.add_parser("tls", help="TLS: a lab CA and server certificates, certificate checks")
    acts = tls.add_subparsers(dest="tls_command", required=True, metavar="ACTION")
    lab = acts.add_parser(
        "lab-ca",
        help="create (or reuse) a private CA in --out and sign server certificates with it",
    )
    lab.add_argument("--out", required=True, help="folder for ca.pem, ca-key.pem and the certs")
    lab.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME[,NAME...]",
        help="a server certificate for these DNS names / IP addresses (repeatable)",
    )
    lab.add_argument(
        "--days", type=bounded_int(1, 3650), default=397, help="server certificate lifetime"
    )
    lab.set_defaults(func=_lab_ca)
    chk = acts.add_parser("check", help="check a certificate and key the way `serve` will")
    chk.add_argument("--cert", required=True)
    chk.add_argument("--key", required=True)
    chk.set_defaults(func=_check)
