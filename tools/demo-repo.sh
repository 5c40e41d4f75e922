#!/usr/bin/env bash
# Build the demo fleet's package repository: two versions each of two small Debian packages,
#   demo-mua     102.0-1, 115.0-1   the "mail client" of the conditional-rule step
#   demo-libssl  3.0.14-1, 3.0.15-1 the "TLS library" with an advisory fixed in 3.0.15-1
# as a flat apt repository (Packages, Packages.gz) that the patch mirror container serves.
#   tools/demo-repo.sh OUTDIR
# Real packages built with dpkg-deb; they install a file and nothing else.
set -euo pipefail
out=${1:?usage: tools/demo-repo.sh OUTDIR}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

build() {  # build NAME VERSION DESCRIPTION
  local name=$1 version=$2 description=$3 root="$work/$1-$2"
  mkdir -p "$root/DEBIAN" "$root/usr/share/$name"
  cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version
Architecture: all
Maintainer: distsec.framework demo <demo@distsec.test>
Section: misc
Priority: optional
Description: $description
 A package of the distsec.framework demo fleet; it installs one file.
CONTROL
  printf '%s %s\n' "$name" "$version" > "$root/usr/share/$name/VERSION"
  # fixed mtimes, so the same input gives the same package
  find "$root" -exec touch -h -d @1700000000 {} +
  SOURCE_DATE_EPOCH=1700000000 dpkg-deb --root-owner-group -Zgzip --build "$root" "$out/${name}_${version}_all.deb" >/dev/null
}

build demo-mua 102.0-1 "demo mail client (outdated: mail is blocked by policy)"
build demo-mua 115.0-1 "demo mail client (current)"
build demo-libssl 3.0.14-1 "demo TLS library (vulnerable)"
build demo-libssl 3.0.15-1 "demo TLS library (patched)"

: > "$out/Packages"
for deb in "$out"/*.deb; do
  {
    dpkg-deb --field "$deb"
    echo "Filename: ./$(basename "$deb")"
    echo "Size: $(stat -c %s "$deb")"
    echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
    echo
  } >> "$out/Packages"
done
gzip -9nc "$out/Packages" > "$out/Packages.gz"
echo "demo repository in $out: $(find "$out" -name '*.deb' | wc -l) packages"
