# %preun: what %systemd_preun turnserver.service does (stop and disable on erase).
if [ "$1" -eq 0 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl --no-reload disable --now turnserver.service >/dev/null 2>&1 || :
fi
exit 0
