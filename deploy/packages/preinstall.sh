#!/bin/sh
# deb preinst / rpm %pre: runs before the files are unpacked, so the sluice
# user and group exist when /var/lib/sluice and /etc/sluice/config.yaml are
# given to them. Upgrades and reinstalls find both and change nothing.
set -e
if ! getent group sluice >/dev/null 2>&1; then
	groupadd --system sluice
fi
if ! getent passwd sluice >/dev/null 2>&1; then
	useradd --system --gid sluice --home-dir /var/lib/sluice --no-create-home \
		--shell /usr/sbin/nologin --comment "Sluice metrics collector" sluice
fi
