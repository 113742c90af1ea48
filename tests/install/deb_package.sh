#!/usr/bin/env bash
# The Debian package CPack builds: it holds lathe, its docs and the quickstart, depends on
# the libraries lathe links, installs (as root: dpkg -i, removed again on exit; otherwise
# unpacked into a folder), and the installed lathe trains the bundled quickstart.
# Usage: deb_package.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
installed=0
cleanup() {
  [ "$installed" = 1 ] && dpkg -r lathe >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v cpack >/dev/null || { echo "SKIP: cpack not found"; exit 77; }
command -v dpkg-shlibdeps >/dev/null || { echo "SKIP: dpkg-dev not installed (scripts/setup.sh --test)"; exit 77; }
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" >cpack.log 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$work"/lathe_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no lathe_*.deb in $work"
echo "package: $(basename "$deb"), $(du -h "$deb" | cut -f1)"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libdnnl libopenmpi libyaml-cpp libgomp openmpi-bin; do
  case "$depends" in *"$lib"*) ;; *) fail "Depends lacks $lib" ;; esac
done
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/lathe ./usr/share/doc/lathe/README.md ./usr/share/doc/lathe/training.md \
  ./usr/share/lathe/configs/quickstart.yaml ./usr/share/lathe/examples/stories260K/model.safetensors \
  ./usr/share/lathe/examples/data/gsm8k_train.jsonl; do
  grep -q " $f\$" <<<"$contents" || fail "the package lacks $f"
done

if [ "$(id -u)" = 0 ] && ! dpkg-query -W lathe >/dev/null 2>&1; then
  dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"
  installed=1
  root=""
else
  dpkg-deb -x "$deb" "$work/root"
  root="$work/root"
fi
lathe="$root/usr/bin/lathe"
"$lathe" --version | tee "$work/version.txt"
grep -q "^lathe [0-9]" "$work/version.txt" || fail "lathe --version printed no version"

# The quickstart from the package's own files, a few steps of it.
cd "$root/usr/share/lathe"
"$lathe" train configs/quickstart.yaml train.max_steps=3 output.dir="$work/run" \
  data.cache_dir="$work/cache" >"$work/train.log" 2>&1 || { tail -20 "$work/train.log"; fail "lathe train on the packaged quickstart failed"; }
[ -f "$work/run/final/model.safetensors" ] || fail "no final/model.safetensors after training"
[ "$(grep -c '"step"' "$work/run/metrics.jsonl")" -ge 3 ] || fail "metrics.jsonl has fewer than 3 steps"
echo "the packaged lathe trained the quickstart: $(tail -1 "$work/run/metrics.jsonl")"
