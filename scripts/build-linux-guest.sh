#!/usr/bin/env bash
# Builds libqemu's Linux test guest (a Debian cloud kernel plus an initramfs with busybox and qemu-ga) from
# Debian packages, without root, and prints the directory that holds it:
#   vmlinuz, initrd.img, manifest.json (versions, kernel command line).
# The result is cached in a directory named after the package and library versions and this script's own
# files, so a second run only asks apt for versions. The cache is world-readable: the private libvirtd runs
# QEMU as uid 65534, which must read the kernel and initramfs.
#
# Environment: LIBQEMU_GUEST_CACHE  cache root (default /var/tmp/libqemu-<uid>/linux-guest)
# Needs: apt-get, apt-cache, dpkg-deb, dpkg-query, ldd, gzip, flock (all in a standard Debian/Ubuntu).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rootfs_src="$here/linux-guest/rootfs"
cache_root=${LIBQEMU_GUEST_CACHE:-/var/tmp/libqemu-$(id -u)/linux-guest}
# virtio (PCI transport, console, block, net), the ACPI power button and the input events acpid reads.
modules_wanted=(virtio_pci virtio_console virtio_blk virtio_net button evdev)
# cryptomgr.notests: the kernel's crypto self-tests cost ~0.4 s of a ~2.5 s TCG boot and test nothing we use.
kernel_cmdline='console=ttyS0 quiet cryptomgr.notests'

die() {
  echo "libqemu: cannot build the Linux test guest: $1" >&2
  [ -n "${2:-}" ] && echo "libqemu: $2" >&2
  exit 1
}
log() { echo "libqemu: linux guest: $*" >&2; }

for tool in apt-get apt-cache dpkg-deb dpkg-query ldd gzip flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed" "the guest is built from Debian packages: run this on Debian/Ubuntu (scripts/host-setup.sh checks the host)"
done

# The cache directory must be ours and not writable by others: everything in it ends up in a guest.
mkdir -p "$cache_root"
chmod 0755 "$cache_root"
[ -O "$cache_root" ] && [ ! -L "$cache_root" ] || die "$cache_root is not a directory owned by $(id -un)" "set LIBQEMU_GUEST_CACHE to a directory of your own"
# QEMU (uid 65534 under the private libvirtd) must be able to reach the files: make the way there searchable.
d=$cache_root
while [ "$d" != / ]; do
  if [ -O "$d" ]; then chmod a+x "$d"; elif [ ! -x "$d" ]; then die "$d is not searchable by QEMU's uid" "set LIBQEMU_GUEST_CACHE elsewhere"; fi
  d=$(dirname "$d")
done

exec 9>"$cache_root/.lock"
flock -w 600 9 || die "another build holds $cache_root/.lock for more than 10 minutes"

# ---- versions, and from them the cache key --------------------------------------------------------------
# One apt-cache call (each costs ~0.4 s): the candidate records, i.e. what apt-get download would fetch now.
kernel_meta=linux-image-cloud-amd64
records=$(apt-cache show --no-all-versions "$kernel_meta" busybox-static qemu-guest-agent 2>/dev/null || true)
field() { # package field → value from $records
  awk -v p="$1" -v f="$2:" '$1 == "Package:" { cur = $2 } cur == p && $1 == f { sub(/^[^:]*: /, ""); print; exit }' <<<"$records"
}
for pkg in "$kernel_meta" busybox-static qemu-guest-agent; do
  [ -n "$(field "$pkg" Version)" ] || die "apt knows no installable version of the package '$pkg'" "run 'apt-get update' as root (scripts/host-setup.sh does), then try again"
done
# The meta package depends on exactly one versioned kernel package: linux-image-<abi>-cloud-amd64 (= <version>).
kernel_dep=$(field "$kernel_meta" Depends | tr ',' '\n' | grep -m1 -o 'linux-image-[^ ]* (= [^)]*)' || true)
[ -n "$kernel_dep" ] || die "cannot tell which kernel package $kernel_meta depends on"
kernel_pkg=${kernel_dep%% *}
kernel_version=$(sed 's/.*(= \(.*\))/\1/' <<<"$kernel_dep")
busybox_version=$(field busybox-static Version)
qga_version=$(field qemu-guest-agent Version)

work=$(mktemp -d "$cache_root/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"

download() { # package=version → its .deb in $work/debs
  local spec=$1 out
  if ! out=$(cd "$work/debs" && apt-get download -q "$spec" 2>&1); then
    die "apt-get download $spec failed: $(echo "$out" | grep -E '^(E|W):' | head -3 | tr '\n' ' ')" \
      "run 'apt-get update' as root so apt's lists are current, then try again"
  fi
}
mkdir -p "$work/debs"

# qemu-ga's shared libraries come from the host (found with ldd on the binary): their list is fixed per
# qemu-ga version and remembered, so a warm run needs no download to know them.
libs_list="$cache_root/qemu-ga-$qga_version.libs"
if [ ! -s "$libs_list" ]; then
  download "qemu-guest-agent=$qga_version"
  dpkg-deb -x "$work"/debs/qemu-guest-agent_*.deb "$work/qga"
  ldd_out=$(ldd "$work/qga/usr/sbin/qemu-ga" 2>&1) || die "ldd cannot read qemu-ga: $ldd_out"
  if grep -q 'not found' <<<"$ldd_out"; then
    deps=$(apt-cache depends qemu-guest-agent 2>/dev/null | awk '/Depends:/ { print $2 }' | grep -v '^<' | tr '\n' ' ')
    die "qemu-ga needs shared libraries this host lacks: $(grep 'not found' <<<"$ldd_out" | awk '{ print $1 }' | tr '\n' ' ')" \
      "install qemu-guest-agent's dependencies as root: apt-get install -y --no-install-recommends $deps"
  fi
  awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u >"$libs_list.tmp"
  mv "$libs_list.tmp" "$libs_list"
fi
mapfile -t libs <"$libs_list"
for lib in "${libs[@]}"; do
  [ -e "$lib" ] || die "qemu-ga needs $lib, which this host no longer has" "reinstall qemu-guest-agent's dependencies, or remove $libs_list"
done
# Which packages own them (the cache key holds their versions). With merged /usr a package may list the
# file under /usr/lib or /lib, so both spellings are asked for. dpkg -S prints "pkg[:arch][, pkg2]: /path".
spellings=()
for lib in "${libs[@]}"; do
  spellings+=("$lib")
  case "$lib" in /usr/*) spellings+=("${lib#/usr}") ;; *) spellings+=("/usr$lib") ;; esac
done
owners=$(dpkg -S "${spellings[@]}" 2>/dev/null | grep -v '^diversion' || true)
for lib in "${libs[@]}"; do
  grep -qE ": (/usr)?${lib#/usr}\$" <<<"$owners" || die "no installed package owns $lib" "the guest copies qemu-ga's libraries from host packages"
done
lib_pkgs=()
mapfile -t lib_pkgs < <(sed 's/: .*//' <<<"$owners" | tr ',' '\n' | sed 's/^ *//' | sort -u)
lib_versions=$(dpkg-query -W -f '${Package}=${Version}\n' "${lib_pkgs[@]}" | sort)

versions="$kernel_pkg=$kernel_version
busybox-static=$busybox_version
qemu-guest-agent=$qga_version
$lib_versions"
recipe=$( (cat "${BASH_SOURCE[0]}"; cd "$rootfs_src" && find . -type f -o -type l | sort | while read -r f; do echo "$f"; stat -c %a "$f"; cat "$f"; done) | sha256sum | cut -c1-16)
key=$( (echo "$versions"; echo "recipe=$recipe") | sha256sum | cut -c1-16)
out="$cache_root/$key"
if [ -f "$out/manifest.json" ]; then
  echo "$out"
  exit 0
fi

# ---- build -----------------------------------------------------------------------------------------------
started_ms=$(($(date +%s%N) / 1000000))
log "building $key: $kernel_pkg $kernel_version, busybox-static $busybox_version, qemu-guest-agent $qga_version"
[ -d "$work/qga" ] || { download "qemu-guest-agent=$qga_version"; dpkg-deb -x "$work"/debs/qemu-guest-agent_*.deb "$work/qga"; }
download "$kernel_pkg=$kernel_version"
download "busybox-static=$busybox_version"
dpkg-deb -x "$work"/debs/"$kernel_pkg"_*.deb "$work/kernel"
dpkg-deb -x "$work"/debs/busybox-static_*.deb "$work/busybox"
busybox="$work/busybox/bin/busybox"
uname_r=$(ls "$work/kernel/lib/modules")
[ "$(echo "$uname_r" | wc -l)" = 1 ] || die "the kernel package holds several module trees: $uname_r"

root="$work/root"
mkdir -p "$root"/{bin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,root,etc,var,run} "$root/lib/modules/$uname_r"
ln -s bin "$root/sbin"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp "$work/qga/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
for lib in "${libs[@]}"; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The files libqemu adds (init, rc, shims, /etc): they replace busybox's applet links of the same name.
(cd "$rootfs_src" && find . -type f) | while read -r f; do
  rm -f "$root/$f"
  mkdir -p "$(dirname "$root/$f")"
  cp -p "$rootfs_src/$f" "$root/$f"
done

# Kernel modules: the package ships no modules.dep (depmod runs in its postinst), so busybox's depmod makes
# one; the init loads the wanted modules and their dependencies in dependency order with insmod.
"$busybox" depmod -b "$work/kernel" "$uname_r"
depfile="$work/kernel/lib/modules/$uname_r/modules.dep"
declare -A seen=()
order=()
visit() { # module path relative to the module dir
  local path=$1 dep
  [ -n "${seen[$path]:-}" ] && return
  seen[$path]=1
  for dep in $(awk -v p="$path:" '$1 == p { $1 = ""; print }' "$depfile"); do visit "$dep"; done
  order+=("$path")
}
for m in "${modules_wanted[@]}"; do
  path=$(awk -F: -v m="/$m.ko" 'index($1, m) && substr($1, length($1) - length(m) + 1) == m { print $1; exit }' "$depfile")
  [ -n "$path" ] || die "the kernel $uname_r has no module $m"
  visit "$path"
done
for path in "${order[@]}"; do
  mkdir -p "$(dirname "$root/lib/modules/$uname_r/$path")"
  cp "$work/kernel/lib/modules/$uname_r/$path" "$root/lib/modules/$uname_r/$path"
done
printf '%s\n' "${order[@]}" >"$root/etc/modules.load"

# Packed by busybox's own cpio (no root, no host cpio): -R 0:0 makes every file root's inside the guest.
mkdir -p "$work/out"
(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -6 >"$work/out/initrd.img"
cp "$work/kernel/boot/vmlinuz-$uname_r" "$work/out/vmlinuz"
{
  echo '{'
  echo "  \"key\": \"$key\","
  echo "  \"kernel\": \"vmlinuz\","
  echo "  \"initrd\": \"initrd.img\","
  echo "  \"cmdline\": \"$kernel_cmdline\","
  echo "  \"kernelRelease\": \"$uname_r\","
  echo "  \"modules\": [$(printf '"%s",' "${modules_wanted[@]}" | sed 's/,$//')],"
  echo "  \"packages\": {"
  echo "$versions" | awk -F= '{ printf "%s    \"%s\": \"%s\"", (NR > 1 ? ",\n" : ""), $1, $2 } END { print "" }'
  echo "  },"
  echo "  \"builtAt\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
  echo '}'
} >"$work/out/manifest.json"
chmod 0755 "$work/out"
chmod 0644 "$work/out"/*
rm -rf "$out"
mv "$work/out" "$out"
# Keep the three newest builds (another checkout may still use an older recipe); drop the rest.
ls -1dt "$cache_root"/[0-9a-f]*/ 2>/dev/null | tail -n +4 | while read -r old; do
  [ -f "$old/manifest.json" ] && rm -rf "$old"
done
log "built $out in $(($(date +%s%N) / 1000000 - started_ms)) ms ($(du -h "$out/initrd.img" | cut -f1) initramfs)"
echo "$out"
