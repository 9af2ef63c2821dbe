#!/bin/sh
# The local MariaDB stand-in's entrypoint: on an empty data directory it does what the public
# image does with MARIADB_DATABASE, MARIADB_USER and MARIADB_PASSWORD(_FILE), then runs the
# server on all interfaces. root keeps socket-only authentication (nobody needs it over TCP,
# as with MARIADB_RANDOM_ROOT_PASSWORD); the OS user mysql administers through the socket.
set -eu
datadir=/var/lib/mysql
if [ ! -d "$datadir/mysql" ]; then
  echo "initialising $datadir"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
  mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket=/run/mysqld/init.sock &
  init_pid=$!
  for _ in $(seq 60); do
    mariadb-admin --socket=/run/mysqld/init.sock -umysql ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  password="${MARIADB_PASSWORD:-}"
  if [ -n "${MARIADB_PASSWORD_FILE:-}" ]; then password=$(cat "$MARIADB_PASSWORD_FILE"); fi
  {
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\` CHARACTER SET utf8mb4;"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$password';"
      [ -z "${MARIADB_DATABASE:-}" ] || echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%';"
    fi
  } | mariadb --socket=/run/mysqld/init.sock -umysql
  kill "$init_pid"
  wait "$init_pid" || true
  echo "initialised"
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 "$@"
