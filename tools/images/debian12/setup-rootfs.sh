#!/bin/sh
# Runs inside the debootstrapped root (chroot) to turn it into a container target:
# systemd as PID 1, sshd with per-container host keys, apt sources with security updates.
set -eu
suite=$1
mirror=$2

cat > /etc/apt/sources.list <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF

# Test networks give containers IPv6 ULA addresses with no IPv6 path to the outside: apt must
# reach the Debian archive over IPv4.
echo 'Acquire::ForceIPv4 "true";' > /etc/apt/apt.conf.d/99distsec-test-ipv4

# Every container gets its own machine-id and SSH host keys at first boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id /etc/ssh/ssh_host_*
cat > /etc/systemd/system/distsec-sshd-keygen.service <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
systemctl enable distsec-sshd-keygen.service ssh.service >/dev/null 2>&1

# Units that have nothing to do in a container and only slow the boot or fail.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
            systemd-udev-trigger.service systemd-modules-load.service \
            sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
            systemd-remount-fs.service apt-daily.timer apt-daily-upgrade.timer; do
  systemctl mask "$unit" >/dev/null 2>&1 || true
done
systemctl set-default multi-user.target >/dev/null 2>&1

# firewalld is installed for the firewall scenario, which enables and starts it; everywhere
# else it must stay off (other scenarios expect no firewalld). Disabling also removes its D-Bus
# alias, so a stray firewall-cmd cannot start it through D-Bus activation.
systemctl disable firewalld.service >/dev/null 2>&1

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*
