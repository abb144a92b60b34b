#!/usr/bin/env bash
# Installs gvs (make install) or removes what was installed (make
# uninstall). Settings come from the Makefile's variables in the
# environment; every file installed is listed in $DESTDIR$MANIFEST, and
# uninstall removes exactly those, then the manifest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${DESTDIR:=}"
mf="$DESTDIR$MANIFEST"

if [ "$1" = uninstall ]; then
	if [ ! -f "$mf" ]; then
		echo "uninstall: no manifest at $mf: nothing installed there" >&2
		exit 1
	fi
	# Files first, then the directories install made, deepest first,
	# each only if nothing else is in it.
	grep -v '/$' "$mf" | while IFS= read -r f; do
		rm -f -- "$DESTDIR$f"
	done
	rm -f -- "$mf"
	dirs=$(sort -r "$mf.dirs" 2>/dev/null || true)
	rm -f -- "$mf.dirs"
	while IFS= read -r d; do
		[ -n "$d" ] && { rmdir --ignore-fail-on-non-empty -- "$DESTDIR$d" 2>/dev/null || true; }
	done <<<"$dirs"
	echo "uninstall: removed the files listed in $mf"
	exit 0
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# put MODE SRC DST: installs SRC at DST and records DST.
# Directories it creates are recorded too (a trailing /), so uninstall
# removes them when they are empty again.
put() {
	local d
	d=$(dirname "$3")
	while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do
		echo "$d/" >>"$tmp"
		d=$(dirname "$d")
	done
	install -D -m "$1" "$2" "$DESTDIR$3"
	echo "$3" >>"$tmp"
}
for p in gvsd gvsadm gvs-realserver gvs-lbaas; do
	put 755 "$BIN/$p" "$SBINDIR/$p"
done
for u in gvsd.service gvs-lbaas.service; do
	sed "s|/usr/sbin/|$SBINDIR/|g" "packaging/systemd/$u" >"$tmp.unit"
	put 644 "$tmp.unit" "$UNITDIR/$u"
	rm -f "$tmp.unit"
done
for m in packaging/man/*.[58]; do
	name=$(basename "$m")
	sec=${name##*.}
	if [ "${GZIP_MAN:-}" = 1 ]; then
		gzip -9n <"$m" >"$tmp.gz"
		put 644 "$tmp.gz" "$MANDIR/man$sec/$name.gz"
		rm -f "$tmp.gz"
	else
		put 644 "$m" "$MANDIR/man$sec/$name"
	fi
done
put 644 packaging/completion/gvsadm.bash "$COMPLETIONDIR/gvsadm"
put 644 packaging/completion/gvsadm.bash "$COMPLETIONDIR/ipvsadm"
# Example configs: never over an operator's file.
for c in gvsd.env gvsd.yaml gvs-lbaas.env; do
	dst="$SYSCONFDIR/gvs/$c"
	if [ -e "$DESTDIR$dst" ]; then
		echo "install: $DESTDIR$dst exists, kept"
	else
		put 644 "packaging/etc/$c" "$dst"
	fi
done
if [ -n "$MANIFEST" ]; then
	# Files from an earlier install stay listed.
	d=$(dirname "$MANIFEST")
	while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do
		echo "$d/" >>"$tmp"
		d=$(dirname "$d")
	done
	mkdir -p "$(dirname "$mf")"
	[ -f "$mf" ] && cat "$mf" >>"$tmp"
	[ -f "$mf.dirs" ] && cat "$mf.dirs" >>"$tmp"
	grep -v '/$' "$tmp" | sort -u >"$mf"
	grep '/$' "$tmp" | sort -u >"$mf.dirs" || true
	echo "install: $(wc -l <"$mf") files, listed in $mf"
fi
