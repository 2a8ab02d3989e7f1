#!/bin/sh
# deps.sh - install what mq needs to build and test, from Debian's packages.
# Run by `make demo` and (with "check") `make check`; it does nothing when
# all is there.
pkgs="gcc make libc6-dev liburing-dev zlib1g-dev libjansson-dev libisal-dev bats mandoc
python3 strace util-linux procps cppcheck clang jq pkgconf openssh-server
openssh-client"
# make check also runs promtool (in Debian's prometheus package) on the
# metrics mq-topic stats prints
[ "${1:-}" = check ] && pkgs="$pkgs prometheus"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing" >&2
	echo "deps.sh: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null ||
    { echo "deps.sh: apt-get install$missing failed" >&2; exit 1; }
