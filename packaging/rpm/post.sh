# l2sec %post: the system-wide profile directory, root only (the package cannot ship it empty).
[ -d /etc/l2sec/profiles ] || install -d -m 0700 /etc/l2sec/profiles
