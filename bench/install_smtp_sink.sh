#!/bin/sh
# Installs Postfix's smtp-sink (Debian package `postfix`) for bench/send.py, with Postfix's own mail
# service kept from starting: a policy-rc.d that refuses every start while apt-get runs (the one
# already there is kept), "No configuration" for debconf, and any Postfix master stopped after.
# Skips, saying why, when smtp-sink is there already, when not root, or without apt-get.
set -u
if command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "smtp-sink not installed (needs root and apt-get): bench/send.py uses its aiosmtpd sink"
    exit 0
fi
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && ours=1
fi
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
echo "installing Postfix's smtp-sink (package postfix, its service not started) ..."
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/tmp/mailramp-postfix-install.log 2>&1 \
    || { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postfix >/tmp/mailramp-postfix-install.log 2>&1; } \
    || echo "postfix install failed (see /tmp/mailramp-postfix-install.log): bench/send.py uses its aiosmtpd sink"
[ -n "$ours" ] && rm -f "$policy"
# Nothing of Postfix's may be left running or listening on port 25.
if [ -f /var/spool/postfix/pid/master.pid ]; then
    postfix stop >/dev/null 2>&1 || true
fi
exit 0
