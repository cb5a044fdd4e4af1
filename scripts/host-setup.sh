#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages libqemu's demo, tests and benchmarks need, when they are missing.
# It changes nothing else on the host: no services are enabled, no users created, no /etc config written
# (the tests run their own private libvirtd in a temporary directory).
set -euo pipefail

# package → a file it provides (checked instead of dpkg, so a host with the tools from elsewhere is fine too)
declare -A WANT=(
  [qemu-system-x86]=/usr/bin/qemu-system-x86_64
  [libvirt-daemon]=/usr/sbin/libvirtd
  [libvirt-daemon-driver-qemu]=/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
  [libvirt-clients]=/usr/bin/virsh
  [tini]=/usr/bin/tini            # child subreaper for the private libvirtd (QEMU is double-forked)
  [socat]=/usr/bin/socat          # a plain QMP client the proxy tests use
  [binutils]=/usr/bin/as          # assembles the tiny memory-dirtying guest kernel of the migration tests
  [python3-libvirt]=/usr/lib/python3/dist-packages/libvirt.py            # benchmark baseline
  [libvirt-clients-qemu]=/usr/bin/virt-qemu-qmp-proxy                    # benchmark baseline
  [qemu-utils]=/usr/bin/qemu-img    # qcow2 images for the disk hot-plug and snapshot tests
  [libvirt-dev]=/usr/share/libvirt/api/libvirt-api.xml                   # re-pinning the generated libvirt API (scripts/gen/libvirt/)
)

missing=()
for pkg in "${!WANT[@]}"; do
  [ -e "${WANT[$pkg]}" ] || missing+=("$pkg")
done
# libvirt-daemon-driver-qemu's path differs across distributions; accept any copy of the driver.
if [[ " ${missing[*]} " == *" libvirt-daemon-driver-qemu "* ]] && \
   ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1; then
  missing=("${missing[@]/libvirt-daemon-driver-qemu}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sed '/^$/d' | sort)

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "libqemu: these host packages are missing: ${missing[*]}" >&2
  echo "libqemu: install them as root, then run this command again:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "libqemu: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 1
fi

echo "libqemu: installing host packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
