"""The benchmark scenario (benches/sidekiq-scenario.yml) as a pyinfra deploy.

pyinfra has no sudoers validation before install and no lingering operation: the sudoers
file is checked with visudo right after it changes, and lingering is enabled with
loginctl when the host's facts say it is off.
"""

from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.facts.server import Users
from pyinfra.operations import apt, files, server, systemd

APP_ROOT = "/opt/app"

SYSTEM_UNIT = f"""[Unit]
Description=Sidekiq (benchmark)
After=network.target

[Service]
User=deploy
WorkingDirectory={APP_ROOT}
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""

USER_UNIT = f"""[Unit]
Description=Sidekiq, low-priority queues (benchmark)

[Service]
WorkingDirectory={APP_ROOT}
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=default.target
"""

SUDOERS = (
    "deploy ALL=(root) NOPASSWD: /bin/systemctl start sidekiq.service, "
    "/bin/systemctl stop sidekiq.service, /bin/systemctl restart sidekiq.service, "
    "/bin/systemctl status sidekiq.service\n"
)

apt.packages(name="ssh server", packages=["openssh-server"])

server.user(name="deploy user", user="deploy", shell="/bin/bash", create_home=True)

files.directory(
    name="application directory",
    path=APP_ROOT,
    user="deploy",
    group="deploy",
    mode="755",
)

unit = files.put(
    name="sidekiq system unit",
    src=StringIO(SYSTEM_UNIT),
    dest="/etc/systemd/system/sidekiq.service",
    user="root",
    group="root",
    mode="644",
)
systemd.daemon_reload(name="reload the system manager", _if=unit.did_change)
systemd.service(
    name="sidekiq enabled and started",
    service="sidekiq.service",
    running=True,
    enabled=True,
)

sudoers = files.put(
    name="let deploy control sidekiq",
    src=StringIO(SUDOERS),
    dest="/etc/sudoers.d/sidekiq",
    user="root",
    group="root",
    mode="440",
)
server.shell(
    name="sudoers file is valid",
    commands=["visudo -cf /etc/sudoers.d/sidekiq"],
    _if=sudoers.did_change,
)

# Facts are read before any operation runs: on a fresh host deploy does not exist yet
# and gets Debian's first regular uid, 1000.
deploy = host.get_fact(Users).get("deploy") or {"home": "/home/deploy", "uid": 1000}
runtime_dir = f"/run/user/{deploy['uid']}"

if not host.get_fact(File, path="/var/lib/systemd/linger/deploy"):
    server.shell(
        name="deploy's manager outlives its sessions",
        commands=[
            "loginctl enable-linger deploy",
            # logind starts the manager in the background; its units need it, so wait
            # for it the way converge does: ask for the unit, which returns once the
            # manager is ready.
            f"systemctl start user@{deploy['uid']}.service",
        ],
    )

home = deploy["home"]
as_deploy = {
    "_sudo": True,
    "_sudo_user": "deploy",
    "_env": {"XDG_RUNTIME_DIR": runtime_dir},
}

for sub in (".config", ".config/systemd", ".config/systemd/user"):
    files.directory(
        name=f"user unit directory ~/{sub}",
        path=f"{home}/{sub}",
        user="deploy",
        group="deploy",
        mode="755",
    )

low_unit = files.put(
    name="low-priority sidekiq unit",
    src=StringIO(USER_UNIT),
    dest=f"{home}/.config/systemd/user/sidekiq-low.service",
    user="deploy",
    group="deploy",
    mode="644",
)
systemd.daemon_reload(
    name="reload deploy's manager",
    user_mode=True,
    _if=low_unit.did_change,
    **as_deploy,
)
systemd.service(
    name="low-priority sidekiq enabled and started",
    service="sidekiq-low.service",
    running=True,
    enabled=True,
    user_mode=True,
    **as_deploy,
)
