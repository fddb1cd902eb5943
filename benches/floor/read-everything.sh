# The floor for a no-change run that reads every resource of the benchmark scenario
# (benches/sidekiq-scenario.yml), as an expert would check them by hand with the fewest
# processes: what any tool must learn from a host to tell whether it is converged, and
# nothing more. No lock, no host facts, no verification of the unit files; the files'
# content is printed rather than compared, as a tool that shows a diff must read it.
# benches/floor runs it on every host at once, in one SSH login each, as root.
dpkg-query -W -f='${db:Status-Abbrev}${Version}\n' openssh-server
account=$(getent passwd deploy)
echo "$account"
uid=${account#*:*:}
uid=${uid%%:*}
stat -c '%U:%G:%a %n' /opt/app /etc/systemd/system/sidekiq.service /etc/sudoers.d/sidekiq \
    /home/deploy/.config/systemd/user/sidekiq-low.service
cat /etc/systemd/system/sidekiq.service /etc/sudoers.d/sidekiq \
    /home/deploy/.config/systemd/user/sidekiq-low.service
[ -e /var/lib/systemd/linger/deploy ] && echo linger=yes
systemctl show -p ActiveState,UnitFileState,NeedDaemonReload sidekiq.service "user@$uid.service"
XDG_RUNTIME_DIR=/run/user/$uid setpriv --reuid="$uid" --regid="$uid" --init-groups \
    systemctl --user show -p ActiveState,UnitFileState,NeedDaemonReload sidekiq-low.service
