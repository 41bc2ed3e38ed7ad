#!/bin/sh
# The image's entrypoint: migrations before the service, then the command.
#   run (default): migrate the database (DATABASE_URL) to head, then the daemon
#   anything else: that spreadwatch command as is (fake-gateway, positions, db ...)
set -eu
if [ "$#" -eq 0 ]; then
    set -- run
fi
if [ "$1" = "run" ]; then
    spreadwatch db upgrade
fi
exec spreadwatch "$@"
