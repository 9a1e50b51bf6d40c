#!/bin/bash
# Builds the l2sec packages: packaging/build.sh
#   -> target/packaging/l2sec_VERSION-1_ARCH.deb and target/packaging/l2sec-VERSION-1.ARCH.rpm
# Installs cargo-deb and cargo-generate-rpm (cargo install --locked) when missing, builds the
# release binary, generates the man page and shell completions from the clap definition, then
# packages.  Needs: cargo, a C compiler (ring), gzip, dpkg-deb.  Runs from anywhere.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
command -v cargo >/dev/null || export PATH="$HOME/.cargo/bin:$PATH"
say() { printf '[packaging] %s\n' "$*" >&2; }

# Both tools read the binary from the workspace's target/ (they map target/release/ to
# CARGO_TARGET_DIR too, but one fixed place keeps the outputs where this script says).
export CARGO_TARGET_DIR="$root/target"
out="$CARGO_TARGET_DIR/packaging"
gen="$CARGO_TARGET_DIR/release/packaging-assets"

for tool in cargo-deb cargo-generate-rpm; do
	if ! command -v "$tool" >/dev/null; then
		say "installing $tool"
		# Its own temporary target directory, not ours.
		env -u CARGO_TARGET_DIR cargo install --locked "$tool"
	fi
done

say "building the release binary"
cargo build --release --locked -p l2sec
bin="$CARGO_TARGET_DIR/release/l2sec"

say "generating the man page and completions"
rm -rf "$gen" "$out"
mkdir -p "$gen" "$out"
# The release profile keeps line tables for profiling; the packages ship a stripped binary
# (cargo-deb strips its own copy, cargo-generate-rpm takes this one).
strip --strip-debug -o "$gen/l2sec" "$bin"
"$bin" man | gzip -9n >"$gen/l2sec.1.gz"
"$bin" completions bash >"$gen/l2sec.bash"
"$bin" completions zsh >"$gen/_l2sec"
"$bin" completions fish >"$gen/l2sec.fish"
for f in l2sec.bash _l2sec l2sec.fish; do
	[ -s "$gen/$f" ] || { say "empty completion file $f"; exit 1; }
done
page=$(gzip -dc "$gen/l2sec.1.gz")
grep -q '^\.TH l2sec 1' <<<"$page" || { say "the man page has no .TH line"; exit 1; }

say "building the .deb"
cargo deb -p l2sec --no-build --strip --output "$out/"
deb=$(ls "$out"/l2sec_*.deb)
# cargo-deb makes every directory 0755 and cannot ship an empty one: add /etc/l2sec/profiles
# with mode 0700 by unpacking and rebuilding the archive (control files kept as they are).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -R "$deb" "$tmp/root"
install -d -m 0755 "$tmp/root/etc/l2sec"
install -d -m 0700 "$tmp/root/etc/l2sec/profiles"
dpkg-deb --root-owner-group -Zxz -b "$tmp/root" "$deb" >/dev/null

say "building the .rpm"
cargo generate-rpm -p crates/cli -o "$out/"

say "done:"
ls -l "$out"/*.deb "$out"/*.rpm >&2
