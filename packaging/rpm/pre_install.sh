# %pre: the system user and group turnserver, as coturn's RPM creates them.
getent group turnserver >/dev/null || groupadd -r turnserver
getent passwd turnserver >/dev/null || \
    useradd -r -g turnserver -d /var/lib/turn -s /sbin/nologin \
        -c "TURN/STUN server daemon" turnserver
exit 0
