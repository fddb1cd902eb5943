# The floor for a first converge of the benchmark scenario (benches/sidekiq-scenario.yml):
# the same end state, made on a fresh host with the fewest commands an expert would type,
# in one shell run as root through one SSH login (benches/floor runs it on every host at
# once). No check of what is there, no diff, no verification beyond what systemctl and
# visudo do themselves: what is left is the hosts' own work.
#
# benches/bench.py also runs it with `settle=3` prepended: then each unit it starts must
# stay active for 3 seconds, checked as an expert would (`sleep`, `systemctl
# is-active`), the same proof converge's default `settle` gives. That floor is what
# converge's first converge is compared with when both prove their starts.
set -eu
settle=${settle:-0}
# prove UNIT SYSTEMCTL...: the unit is still active `settle` seconds after its start.
prove() {
    unit=$1
    shift
    [ "$settle" = 0 ] && return 0
    sleep "$settle"
    "$@" is-active --quiet "$unit"
}
dpkg-query -W -f='${Status}' openssh-server | grep -qx 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-server
useradd --create-home --shell /bin/bash deploy
install -d -o deploy -g deploy -m 0755 /opt/app
cat > /etc/systemd/system/sidekiq.service <<'UNIT'
[Unit]
Description=Sidekiq (benchmark)
After=network.target

[Service]
User=deploy
WorkingDirectory=/opt/app
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
# A unit systemd never loaded needs no daemon-reload.
systemctl enable --now --quiet sidekiq.service
prove sidekiq.service systemctl
umask 0337
cat > /etc/sudoers.d/.sidekiq <<'SUDOERS'
deploy ALL=(root) NOPASSWD: /bin/systemctl start sidekiq.service, /bin/systemctl stop sidekiq.service, /bin/systemctl restart sidekiq.service, /bin/systemctl status sidekiq.service
SUDOERS
visudo -cqf /etc/sudoers.d/.sidekiq
mv /etc/sudoers.d/.sidekiq /etc/sudoers.d/sidekiq
umask 0022
loginctl enable-linger deploy
uid=$(id -u deploy)
runuser -u deploy -- mkdir -p /home/deploy/.config/systemd/user
runuser -u deploy -- tee /home/deploy/.config/systemd/user/sidekiq-low.service >/dev/null <<'UNIT'
[Unit]
Description=Sidekiq, low-priority queues (benchmark)

[Service]
WorkingDirectory=/opt/app
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=default.target
UNIT
# Lingering starts the user's manager without waiting for it; this waits.
systemctl start "user@$uid.service"
XDG_RUNTIME_DIR=/run/user/$uid runuser -u deploy -- systemctl --user enable --now --quiet sidekiq-low.service
prove sidekiq-low.service env XDG_RUNTIME_DIR="/run/user/$uid" runuser -u deploy -- systemctl --user
