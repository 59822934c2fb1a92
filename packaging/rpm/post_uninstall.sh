# %postun: what %systemd_postun_with_restart turnserver.service does. The
# turnserver user and /var/lib/turn (the user database) are kept on erase.
if [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        /usr/bin/systemctl try-restart turnserver.service >/dev/null 2>&1 || :
    fi
fi
exit 0
