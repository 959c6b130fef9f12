#!/bin/sh
# Checks that the build's Debian packages are present; installs them with
# apt-get when run as root, otherwise prints the exact command and fails.
# Usage: tools/ensure-deps.sh PKG...   (Debian package names)
set -u
missing=""
for pkg in "$@"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $pkg"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "installing:$missing" >&2
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2 && exit 0
	echo "error: apt-get install failed for:$missing" >&2
	exit 1
fi
echo "error: missing packages:$missing" >&2
echo "run:   sudo apt-get install -y$missing" >&2
exit 1
