#!/bin/sh
# deb postrm / rpm %postun. A removal keeps the config files and the queue in
# /var/lib/sluice (data not yet delivered); a deb purge deletes the queue too
# (dpkg deletes the config files itself). The sluice user stays, as Debian's
# packages leave their system users: files it owns elsewhere would otherwise
# pass to the next user given its UID.
set -e
if [ "$1" = purge ]; then
	rm -rf /var/lib/sluice
	# Target files a user added stay; an empty directory goes.
	rmdir /etc/sluice/targets /etc/sluice 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
