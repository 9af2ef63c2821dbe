#!/bin/sh
# The local MariaDB stand-in's health check, called as the public image's
# `healthcheck.sh --connect --innodb_initialized`: the server answers on its socket and InnoDB
# is available.
set -eu
mariadb --socket=/run/mysqld/mysqld.sock -umysql -N -e \
  "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT')" \
  | grep -q 1
