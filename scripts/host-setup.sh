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
# The Linux test guest (scripts/build-linux-guest.sh) is made of packages apt downloads without installing
# (kernel, busybox-static, qemu-guest-agent), plus qemu-ga's shared libraries copied from the host: apt's
# lists must know the former, the host must have the latter.
guest_pkgs=(linux-image-cloud-amd64 busybox-static qemu-guest-agent)
if command -v apt-cache >/dev/null 2>&1; then
  if ! apt-cache show --no-all-versions "${guest_pkgs[@]}" >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "libqemu: apt does not know ${guest_pkgs[*]} yet: apt-get update" >&2
      apt-get update -qq >&2
    else
      echo "libqemu: apt does not know ${guest_pkgs[*]}: run 'sudo apt-get update' for the Linux test guest" >&2
    fi
  fi
  for dep in $(apt-cache depends qemu-guest-agent 2>/dev/null | awk '$1 == "Depends:" && $2 !~ /^</ { print $2 }'); do
    dpkg-query -W -f '${Status}\n' "$dep" 2>/dev/null | grep -q 'install ok installed' || missing+=("$dep")
  done
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sed '/^$/d' | sort -u)

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
