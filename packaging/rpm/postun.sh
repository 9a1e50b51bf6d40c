# l2sec %postun: on erase, remove the profile directory %post made, if nothing is left in it.
if [ "$1" -eq 0 ]; then
	rmdir /etc/l2sec/profiles /etc/l2sec 2>/dev/null || :
fi
