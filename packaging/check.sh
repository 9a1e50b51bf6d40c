#!/bin/bash
# Checks the file lists of the built packages: packaging/check.sh [DIR]
# (DIR defaults to target/packaging).  Installs `rpm` (for rpm -qp) when missing.
# Prints both lists; fails when an expected file is missing, has the wrong mode, or when a
# package holds anything unexpected (maintainer scripts included).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=apt.sh
. "$root/packaging/apt.sh"
dir=${1:-$root/target/packaging}
deb=$(ls "$dir"/l2sec_*.deb)
rpm=$(ls "$dir"/l2sec-*.rpm)
command -v rpm >/dev/null || apt_ensure rpm
fail=0
bad() { echo "check: $*" >&2; fail=1; }

profiles=$(cd "$root/profiles" && for f in *.toml; do echo "$f"; done)

# "MODE PATH" lines of what each package must hold (directories end in /).
common() {
	local unit=$1 zsh=$2
	cat <<-LIST
		-rwxr-xr-x /usr/bin/l2sec
		-rw-r--r-- /usr/share/man/man1/l2sec.1.gz
		-rw-r--r-- /usr/share/bash-completion/completions/l2sec
		-rw-r--r-- $zsh/_l2sec
		-rw-r--r-- /usr/share/fish/vendor_completions.d/l2sec.fish
		-rw-r--r-- $unit/l2sec@.service
		-rw-r--r-- /usr/share/doc/l2sec/README.md
		-rw-r--r-- /usr/share/doc/l2sec/README.packaging.md
	LIST
	for p in $profiles; do echo "-rw-r--r-- /usr/share/doc/l2sec/examples/profiles/$p"; done
}

# The package's "MODE PATH" lines, directories with a trailing /.
deb_list() {
	dpkg-deb --fsys-tarfile "$deb" | tar -tvf - |
		awk '{ p = $6; sub(/^\./, "", p); if (p != "/") print $1, p }'
}
rpm_list() {
	rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" |
		awk '{ p = $2; if ($1 ~ /^d/) p = p "/"; print $1, p }'
}

# check NAME LIST EXPECTED ALLOWED_EXTRA_REGEX
check() {
	local name=$1 list=$2 expected=$3 extra=$4 line path
	while read -r line; do
		grep -qxF -- "$line" <<<"$list" || bad "$name: missing or wrong mode: $line"
	done <<<"$expected"
	while read -r line; do
		path=${line#* }
		grep -qF -- " $path" <<<"$expected" && continue
		[[ $path =~ $extra ]] || bad "$name: unexpected: $line"
	done <<<"$list"
}

echo "== $deb"
dl=$(deb_list)
echo "$dl"
# Parent directories dpkg needs, and the copyright file cargo-deb writes.
# The .deb holds /etc/l2sec/profiles itself (build.sh adds it, mode 0700).
check deb "$dl" "$(common /lib/systemd/system /usr/share/zsh/vendor-completions
	printf '%s\n' 'drwxr-xr-x /etc/l2sec/' 'drwx------ /etc/l2sec/profiles/')" \
	'^(/usr/|/usr/bin/|/usr/share/([a-z-]+/|bash-completion/completions/|zsh/|zsh/vendor-completions/|fish/|fish/vendor_completions.d/|man/man1/|doc/l2sec/(copyright|examples/|examples/profiles/))?|/lib/|/lib/systemd/|/lib/systemd/system/|/etc/)$'
scripts=$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf - | sed -n 's|^\./\(.\)|\1|p' | sort | tr '\n' ' ')
[ "$scripts" = "control prerm " ] ||
	bad "deb: control members are '$scripts', want 'control prerm ' (no postinst)"
dpkg-deb -I "$deb" prerm | grep -q "systemctl stop 'l2sec@\*.service'" ||
	bad "deb: prerm is not packaging/debian/prerm"
dpkg-deb -f "$deb" Package Version Architecture Depends

echo "== $rpm"
rl=$(rpm_list)
echo "$rl"
check rpm "$rl" "$(common /usr/lib/systemd/system /usr/share/zsh/site-functions)" \
	'^/usr/share/doc/l2sec/(examples/(profiles/)?)?$'
# cargo-generate-rpm cannot ship an empty directory: %post makes /etc/l2sec/profiles (0700),
# %postun removes it when empty, %preun stops running instances on erase.
rscripts=$(rpm -qp --scripts "$rpm")
for want in \
	'postinstall scriptlet:install -d -m 0700 /etc/l2sec/profiles' \
	"preuninstall scriptlet:systemctl stop 'l2sec@*.service'" \
	'postuninstall scriptlet:rmdir /etc/l2sec/profiles /etc/l2sec'; do
	grep -q "^${want%%:*}" <<<"$rscripts" || bad "rpm: no ${want%%:*}"
	grep -qF -- "${want#*:}" <<<"$rscripts" || bad "rpm: no scriptlet runs: ${want#*:}"
done
n=$(grep -c 'scriptlet' <<<"$rscripts" || true)
[ "$n" = 3 ] || bad "rpm: $n scriptlets, want %post, %preun and %postun only"
rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE} %{ARCH}\n' "$rpm"

[ "$fail" = 0 ] || { echo "check: FAILED" >&2; exit 1; }
echo "check: both packages hold the expected files"
