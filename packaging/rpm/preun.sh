# l2sec %preun: on erase (not upgrade), stop the running l2sec@ instances (their binary goes
# away; stopping restores routes and DNS). Nothing is enabled, started or restarted.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
	systemctl stop 'l2sec@*.service' || :
fi
