#!/bin/sh
# The seed's START_COORDINATION.sh, for people who expect it: installs
# dependencies on first use, then runs `npm start` (the supervisor: hub,
# dashboard, git bridge when sync is enabled, and every configured instance).
# Extra arguments go to `trinity start`, e.g. --config config/c2.yaml.
# Ctrl-C or SIGTERM stops everything.
set -e
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
exec npm start -- "$@"
