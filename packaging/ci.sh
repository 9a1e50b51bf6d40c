#!/bin/bash
# The packaging step of .ci/run (root, Debian): builds both packages, checks their file lists,
# installs the .deb, runs l2sec and `systemd-analyze verify` on the installed unit, then
# removes and purges the package and checks that nothing is left.  Usage: packaging/ci.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=apt.sh
. packaging/apt.sh
say() { printf '[packaging] %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (dpkg -i)"
if dpkg-query -W -f='${Status}\n' l2sec 2>/dev/null | grep -q ' installed$'; then
	die "an l2sec package is already installed on this machine; remove it first"
fi

packaging/build.sh
packaging/check.sh
deb=$(ls target/packaging/l2sec_*.deb)
version=$(dpkg-deb -f "$deb" Version)
files=$(dpkg-deb --fsys-tarfile "$deb" | tar -tf - | sed 's|^\./|/|' | grep -v '/$')

say "dpkg -i $deb"
# From here on, remove the package again whatever happens.
trap 'dpkg -P l2sec >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb"

say "l2sec --version"
out=$(/usr/bin/l2sec --version)
echo "$out"
[ "$out" = "l2sec ${version%-*}" ] || die "l2sec --version says '$out', package is $version"
[ "$(stat -c %a /etc/l2sec/profiles)" = 700 ] || die "/etc/l2sec/profiles is not 0700"
page=$(gzip -dc /usr/share/man/man1/l2sec.1.gz)
grep -q '^\.TH l2sec 1' <<<"$page" || die "the installed man page has no .TH line"
bash -c '. /usr/share/bash-completion/completions/l2sec && complete -p l2sec' >/dev/null ||
	die "bash completion does not load"
# Without root's capabilities the binary says what it needs (exit 4).
set +e
msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all \
	/usr/bin/l2sec connect --server 198.18.0.1 --no-ipsec --user ci 2>&1 </dev/null)
rc=$?
set -e
if [ "$rc" != 4 ] || ! grep -q 'connect needs CAP_NET_ADMIN' <<<"$msg"; then
	die "unprivileged connect: exit $rc, '$msg'"
fi

say "systemd-analyze verify"
command -v systemd-analyze >/dev/null || apt_ensure systemd
# The template needs an instance name; man:l2sec(1) is checked only when man is installed.
man=no
command -v man >/dev/null && man=yes
set +e
verify=$(systemd-analyze verify --man="$man" /lib/systemd/system/l2sec@test.service 2>&1)
rc=$?
set -e
echo "$verify"
[ "$rc" = 0 ] || die "systemd-analyze verify exited $rc"
# Complaints about other units of the machine are not ours; any about l2sec are.
if grep -i 'l2sec' <<<"$verify"; then
	die "systemd-analyze verify warns about the l2sec unit"
fi

say "dpkg -r l2sec"
dpkg -r l2sec
left=""
for f in $files; do [ -e "$f" ] && left="$left $f"; done
[ -z "$left" ] || die "files left after dpkg -r:$left"
[ ! -e /etc/l2sec/profiles ] || die "/etc/l2sec/profiles left after dpkg -r"
say "dpkg -P l2sec"
dpkg -P l2sec
trap - EXIT
if dpkg-query -W -f='${Status}\n' l2sec 2>/dev/null | grep -Eq ' (installed|config-files)$'; then
	die "dpkg still knows l2sec after purge"
fi
[ ! -e /etc/l2sec ] || die "/etc/l2sec left after purge"
say "packages OK: built, checked, installed, verified, removed"
