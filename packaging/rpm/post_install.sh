# %post: what %systemd_post turnserver.service does, plus the state directory.
mkdir -p /var/lib/turn
chown turnserver:turnserver /var/lib/turn
chmod 0775 /var/lib/turn
if [ "$1" -eq 1 ] && [ -x /usr/bin/systemctl ]; then
    /usr/bin/systemctl --no-reload preset turnserver.service >/dev/null 2>&1 || :
fi
exit 0
