//! What a Sidekiq worker on a test host is seen doing: holding a connection Redis lists
//! as a client, and running a job pushed to its queue. For the playbooks that run
//! Debian's Sidekiq against the host's Redis on its Unix socket.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, TestHost};

/// Redis's socket, as the playbooks configure it.
pub const SOCKET: &str = "/run/redis/redis-server.sock";

/// An inventory of the fleet's hosts in group `app`, with no `sidekiq_exec`: the packaged
/// worker runs. Debian 11's Sidekiq (6.0.4) does not notify systemd: there, the unit is
/// `Type=simple`, as the playbooks' header says.
pub fn inventory(fleet: &Fleet) -> PathBuf {
    let path = fleet.write_inventory("app");
    if std::env::var("CONVERGE_RELEASE").as_deref() == Ok("bullseye") {
        let yaml = std::fs::read_to_string(&path).unwrap();
        let yaml = yaml.replacen("all:\n", "all:\n  vars:\n    sidekiq_notify: false\n", 1);
        std::fs::write(&path, yaml).unwrap();
    }
    path
}

/// The socket inodes the process `pid` holds open, by file descriptor.
fn sockets_of(host: &TestHost, pid: &str) -> BTreeMap<String, String> {
    host.ssh_ok(&format!(
        "cd /proc/{pid}/fd && for fd in *; do echo \"$fd $(readlink $fd)\"; done"
    ))
    .lines()
    .filter_map(|line| {
        let (fd, target) = line.split_once(' ')?;
        let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
        Some((fd.to_owned(), inode.to_owned()))
    })
    .collect()
}

/// How many of the clients Redis lists are connections of the process `sidekiq_pid` (a
/// client whose socket's other end the process holds), and the client list.
fn sidekiq_clients(host: &TestHost, sidekiq_pid: &str) -> (usize, String) {
    let redis_pid = host.ssh_ok("systemctl show -p MainPID --value redis-server");
    // Redis's end of each client connection: its file descriptor, in CLIENT LIST.
    let clients = host.ssh_ok(&format!("redis-cli -s {SOCKET} CLIENT LIST"));
    let redis_sockets = sockets_of(host, &redis_pid);
    let client_inodes: BTreeSet<&String> = clients
        .lines()
        .filter_map(|line| {
            let fd = line
                .split(' ')
                .find_map(|field| field.strip_prefix("fd="))?;
            redis_sockets.get(fd)
        })
        .collect();
    // Each Unix socket's peer, from the kernel: `ss -x` lists local and peer inodes.
    let peers: BTreeMap<String, String> = host
        .ssh_ok("ss -xH")
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(((*fields.get(5)?).to_owned(), (*fields.get(7)?).to_owned()))
        })
        .collect();
    let sidekiq_sockets: BTreeSet<String> = sockets_of(host, sidekiq_pid).into_values().collect();
    let connected = client_inodes
        .iter()
        .filter(|inode| {
            peers
                .get(**inode)
                .is_some_and(|peer| sidekiq_sockets.contains(peer))
        })
        .count();
    (connected, clients)
}

/// Waits, at most a minute, until `done` says yes; `what` names it for the failure.
fn poll(what: &str, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match done() {
            Ok(()) => return,
            Err(state) => assert!(Instant::now() < deadline, "{what}: {state}"),
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Waits (at most a minute: a handler may just have restarted Redis, and Sidekiq be
/// connecting again) until the process `sidekiq_pid` holds a connection the host's
/// Redis lists as a client.
pub fn assert_connected_to_redis(host: &TestHost, sidekiq_pid: &str) {
    poll(
        &format!(
            "no client of Redis is Sidekiq (pid {sidekiq_pid}) on {}",
            host.name
        ),
        || match sidekiq_clients(host, sidekiq_pid) {
            (0, clients) => Err(clients),
            _ => Ok(()),
        },
    );
}

/// Pushes a `MarkerJob` (playbooks/app/worker.rb) named `name` on `queue`, as any
/// Sidekiq client pushes it, and waits (at most a minute) until the process
/// `sidekiq_pid` has run it: the job sets `marker:NAME` to its worker's process ID.
pub fn assert_runs_job(host: &TestHost, sidekiq_pid: &str, queue: &str, name: &str) {
    let job = format!(
        r#"{{"class":"MarkerJob","args":["{name}"],"queue":"{queue}","jid":"0123456789abcdef01234567","retry":false,"created_at":1,"enqueued_at":1}}"#
    );
    host.ssh_ok(&format!(
        "redis-cli -s {SOCKET} LPUSH queue:{queue} '{job}' >/dev/null"
    ));
    poll(
        &format!("the job on {queue} did not run on {}", host.name),
        || {
            let marker = host.ssh_ok(&format!("redis-cli -s {SOCKET} GET marker:{name}"));
            if marker == sidekiq_pid {
                Ok(())
            } else {
                Err(format!("marker {marker:?}, Sidekiq's pid {sidekiq_pid}"))
            }
        },
    );
}
