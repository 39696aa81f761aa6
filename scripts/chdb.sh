#!/usr/bin/env bash
# The embedded ClickHouse engine (chDB) library, libchdb.so, from the npm
# package @chdb/lib-linux-x64-gnu, cached in ~/.cache/vigia/chdb (about
# 180 MB to download once).
#
#   scripts/chdb.sh fetch   install it if missing; print the library's path
#   scripts/chdb.sh path    print the library's path (fails if missing)
#
# Programs find it through CHDB_LIB_PATH:
#   export CHDB_LIB_PATH="$(scripts/chdb.sh fetch)"
set -euo pipefail

VERSION=26.7.3-stable.1
CACHE=${VIGIA_CACHE:-$HOME/.cache/vigia}/chdb
LIB=$CACHE/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so

case "${1:-}" in
fetch)
	if [ ! -f "$LIB" ]; then
		if ! command -v npm >/dev/null; then
			echo "chdb.sh: npm is needed to fetch libchdb.so (Debian: apt-get install npm)" >&2
			exit 1
		fi
		mkdir -p "$CACHE"
		echo "chdb.sh: fetching @chdb/lib-linux-x64-gnu@$VERSION into $CACHE" >&2
		npm install --prefix "$CACHE" --no-audit --no-fund --loglevel=error "@chdb/lib-linux-x64-gnu@$VERSION" >&2
	fi
	[ -f "$LIB" ] || { echo "chdb.sh: $LIB missing after install" >&2; exit 1; }
	echo "$LIB"
	;;
path)
	[ -f "$LIB" ] || { echo "chdb.sh: libchdb.so not installed; run scripts/chdb.sh fetch" >&2; exit 1; }
	echo "$LIB"
	;;
*)
	echo "usage: scripts/chdb.sh fetch|path" >&2
	exit 2
	;;
esac
