#!/usr/bin/env bash
# install_check.sh BUILD_DIR SOURCE_DIR [CFLAGS...]: install kiln from
# BUILD_DIR into a temporary DESTDIR and build tests/install/mine.c against
# it the way README.md shows, with nothing but pkg-config (kiln.pc is
# relocatable: PKG_CONFIG_PATH pointing into the DESTDIR is enough; a build
# dir set up before it was gets a copy with the DESTDIR in its prefix):
#   1. shared: cc mine.c $(pkg-config --cflags --libs kiln), run with the
#      installed libkiln.so (LD_LIBRARY_PATH: the DESTDIR is no system path);
#   2. static: the same with libkiln.a and pkg-config --static; the program
#      needs no libkiln.so.
# CFLAGS are the build's sanitizer flags (an ASan build's libkiln needs the
# program built with them too). The DESTDIR is removed at the end.
set -euo pipefail
build=$1 src=$2
shift 2
extra=("$@")
dest=$(mktemp -d "${TMPDIR:-/tmp}/kiln_install_XXXXXX")
trap 'rm -rf "$dest"' EXIT

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
pc=$(find "$dest" -name kiln.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || { echo "install_check: meson install wrote no kiln.pc" >&2; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
libdir=$(pkg-config --variable=libdir kiln)
case $libdir in "$dest"/*) ;; *)
  # a build dir set up before kiln.pc became relocatable (meson keeps the
  # options it was set up with): a copy whose prefix is in the DESTDIR
  prefix=$(pkg-config --variable=prefix kiln)
  mkdir -p "$dest/pc"
  sed "s|^prefix=.*|prefix=$dest$prefix|" "$pc" >"$dest/pc/kiln.pc"
  export PKG_CONFIG_PATH=$dest/pc
  libdir=$(pkg-config --variable=libdir kiln) ;;
esac
includedir=$(pkg-config --variable=includedir kiln)
for h in "$src"/include/kiln/*.h; do
  [ -f "$includedir/kiln/${h##*/}" ] || { echo "install_check: $includedir/kiln/${h##*/} not installed" >&2; exit 1; }
done
[ -f "$libdir/libkiln.a" ] || { echo "install_check: no $libdir/libkiln.a" >&2; exit 1; }

cc=${CC:-cc}
# 1. the shared library, as README.md builds it
# shellcheck disable=SC2046 # pkg-config's words are separate arguments
"$cc" "${extra[@]}" "$src/tests/install/mine.c" -o "$dest/mine" $(pkg-config --cflags --libs kiln)
readelf -d "$dest/mine" | grep -q 'NEEDED.*libkiln\.so' ||
  { echo "install_check: mine does not link libkiln.so" >&2; exit 1; }
LD_LIBRARY_PATH=$libdir "$dest/mine" "$dest/net.h5" | tee "$dest/out.txt"
grep -q '^mine: ok, .* sum to 2\.000000$' "$dest/out.txt"
[ -s "$dest/net.h5" ]

# 2. the static library as README.md links it: -l:libkiln.a picks the
#    archive by name, pkg-config --static adds what kiln links
# shellcheck disable=SC2046
"$cc" "${extra[@]}" "$src/tests/install/mine.c" -o "$dest/mine_static" $(pkg-config --cflags kiln) \
  -l:libkiln.a $(pkg-config --static --libs kiln | sed 's/ -lkiln\b//')
if readelf -d "$dest/mine_static" | grep -q 'NEEDED.*libkiln'; then
  echo "install_check: mine_static still needs libkiln.so" >&2; exit 1
fi
"$dest/mine_static" "$dest/net2.h5" | grep -q '^mine: ok, .* sum to 2\.000000$'
echo "install_check: ok (shared and static)"
