#!/bin/sh
# deb prerm / rpm %preun. Only a removal stops and disables the service
# (deb: "remove"; rpm: 0 packages left); an upgrade leaves it running and
# postinstall restarts it.
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl stop sluice.service >/dev/null 2>&1 || true
fi
# disable only removes the enablement symlinks, which works without a
# running manager too.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable sluice.service >/dev/null 2>&1 || true
fi
