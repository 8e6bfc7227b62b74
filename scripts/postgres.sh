#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster and create the test role and database.
# Tests reach it over the Unix socket, which also works from inside the test
# network namespace. Idempotent.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=$(pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v {print $2; exit}')
if [ -z "$cluster" ]; then
  $SUDO pg_createcluster "$ver" main >/dev/null
  cluster=main
fi
if ! pg_lsclusters -h | awk -v v="$ver" -v c="$cluster" '$1==v && $2==c {print $4}' | grep -q online; then
  $SUDO pg_ctlcluster "$ver" "$cluster" start
fi
hba=/etc/postgresql/$ver/$cluster/pg_hba.conf
line="local all diemcau scram-sha-256"
if ! $SUDO grep -qxF "$line" "$hba"; then
  # Password login for the test role over the Unix socket (peer auth would need an OS user).
  $SUDO sed -i "1i $line" "$hba"
  $SUDO pg_ctlcluster "$ver" "$cluster" reload || true
fi
psql_su() { $SUDO runuser -u postgres -- psql -qAtX "$@"; }
for _ in $(seq 1 50); do psql_su -c "select 1" >/dev/null 2>&1 && break; sleep 0.2; done
if [ "$(psql_su -c "select 1 from pg_roles where rolname='diemcau'")" != "1" ]; then
  psql_su -c "create role diemcau login password 'diemcau' createdb"
fi
if [ "$(psql_su -c "select 1 from pg_database where datname='diemcau_test'")" != "1" ]; then
  psql_su -c "create database diemcau_test owner diemcau"
fi
echo "==> PostgreSQL $ver/$cluster ready (database diemcau_test)"
