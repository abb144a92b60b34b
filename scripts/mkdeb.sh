#!/usr/bin/env bash
# make deb: builds $BIN/gvs_VERSION_ARCH.deb from the tree with dpkg-deb:
# the binaries in /usr/sbin, units in /lib/systemd/system, man pages,
# bash completion, conffiles in /etc/gvs, maintainer scripts from
# packaging/debian. Prints the package's path.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${BIN:=bin}" "${VERSION:=dev}"

# A Debian version starts with a digit: v1.2-3-gabc -> 1.2+3.gabc; a
# bare commit -> 0~git.COMMIT.
v=${VERSION#v}
case "$v" in
[0-9]*.*) v=$(echo "$v" | sed 's/-\([0-9]*\)-g/+\1.g/; s/-dirty$/+dirty/; s/-/./g') ;;
*) v="0~git.$(echo "$v" | sed 's/-dirty$/+dirty/; s/-/./g')" ;;
esac
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

DESTDIR=$root SBINDIR=/usr/sbin MANDIR=/usr/share/man UNITDIR=/lib/systemd/system \
	COMPLETIONDIR=/usr/share/bash-completion/completions SYSCONFDIR=/etc MANIFEST= \
	BIN=$BIN GZIP_MAN=1 scripts/install.sh install >/dev/null
install -d "$root/usr/share/doc/gvs"
gzip -9n <README.md >"$root/usr/share/doc/gvs/README.md.gz"

install -d "$root/DEBIAN"
for s in postinst prerm postrm; do
	install -m 755 "packaging/debian/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: gvs
Version: $v
Architecture: $arch
Maintainer: gvs developers <gvs@localhost>
Installed-Size: $size
Section: net
Priority: optional
Suggests: bash-completion
Description: Linux Virtual Server in Go: director daemon and ipvsadm-compatible CLI
 gvs is a Layer-4 load balancer director with the IPVS model and the
 ipvsadm interface: gvsd (the daemon, with an XDP fast path and a
 userspace proxy engine), gvsadm (ipvsadm's syntax and output, offered as
 ipvsadm, ipvsadm-save and ipvsadm-restore through update-alternatives),
 gvs-realserver and gvs-lbaas.
CONTROL
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
out="$BIN/gvs_${v}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
