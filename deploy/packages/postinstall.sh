#!/bin/sh
# deb postinst / rpm %post. The service is not enabled or started on a first
# install: the config's backend (SLUICE_GATEWAYS in /etc/default/sluice or
# /etc/sysconfig/sluice, or /etc/sluice/config.yaml itself) has to be set
# first. An upgrade restarts it if it was running.
set -e
# A directory left by an earlier manual install may belong to someone else;
# the unit runs as sluice and writes its queue here.
chown sluice:sluice /var/lib/sluice
chmod 0750 /var/lib/sluice
# /run/systemd/system exists only when systemd is PID 1 (sd_booted(3)). In a
# container, chroot or image build there is no manager to tell, and the unit
# file is read at the next boot; a systemctl failure must not fail the install.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	systemctl try-restart sluice.service >/dev/null 2>&1 || true
fi
