#!/bin/sh
# The seed's START_COORDINATION.sh, for people who expect it: installs
# dependencies on first use (`npm ci` also builds, by the `prepare` script),
# then becomes `npm start` (the supervisor: hub, dashboard, git bridge when
# sync is enabled, and every configured instance). Extra arguments go to
# `trinity start`, e.g. --config config/c2.yaml.
# `exec` all the way down (this script → npm → the supervisor), so SIGTERM,
# SIGINT (Ctrl-C) or SIGHUP to this script's PID stops everything.
set -e
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
[ -f dist/src/cli/main.js ] || npm run build
exec npm start -- "$@"
