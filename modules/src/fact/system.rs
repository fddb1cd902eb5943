//! The host-wide fact: host name, operating system and the system tools converge drives.

use serde::Serialize;

/// Host name, operating system and the system tools converge drives on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SystemInfo {
    pub hostname: String,
    /// `ID` from os-release, e.g. `debian`.
    pub os: String,
    /// `VERSION_ID` from os-release, e.g. `12`.
    pub os_version: String,
    /// systemd's major version, e.g. 252 (`None` when it cannot be told).
    pub systemd_version: Option<u32>,
    /// The sudo that `become` and the sudoers proof use (`None`: none is installed).
    pub sudo: Option<Sudo>,
    /// The sudoers checker: `visudo`, or `visudo-rs` where only sudo-rs is installed.
    pub visudo: Option<String>,
    /// Where `systemctl` is, among `/bin/systemctl` and `/usr/bin/systemctl` (both on
    /// a host with a merged `/usr`).
    pub systemctl: Vec<String>,
}

/// Which sudo a host has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sudo {
    /// Where it is, e.g. `/usr/bin/sudo` or `/usr/bin/sudo-rs`.
    pub path: String,
    /// `sudo` (Todd Miller's) or `sudo-rs`, whatever name it is installed under.
    pub flavour: String,
    /// Its version, e.g. `1.9.13p3` or `0.2.5`.
    pub version: String,
}

pub(crate) fn parse_system(output: &str) -> Option<SystemInfo> {
    let mut lines = output.lines();
    let mut info = SystemInfo {
        hostname: lines.next()?.to_owned(),
        os: lines.next()?.to_owned(),
        os_version: lines.next().unwrap_or_default().to_owned(),
        ..SystemInfo::default()
    };
    let mut sudo_path = None;
    let mut sudo_says = String::new();
    for line in lines {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name {
            "systemd" => info.systemd_version = value.parse().ok(),
            "sudo" => sudo_path = Some(value.to_owned()),
            "sudo_version" => value.clone_into(&mut sudo_says),
            "visudo" => info.visudo = Some(value.to_owned()),
            "systemctl" => info.systemctl.push(value.to_owned()),
            _ => {}
        }
    }
    info.sudo = sudo_path.map(|path| {
        // `Sudo version 1.9.13p3`, or `sudo-rs 0.2.5`.
        let (flavour, version) = match sudo_says.strip_prefix("Sudo version ") {
            Some(version) => ("sudo", version),
            None => match sudo_says.split_once(' ') {
                Some((flavour, version)) => (flavour, version),
                None => ("unknown", ""),
            },
        };
        Sudo {
            path,
            flavour: flavour.to_owned(),
            version: version.trim().to_owned(),
        }
    });
    Some(info)
}

/// The `sh` snippet that prints [`SystemInfo`].
// `read` is a builtin: the kernel's host name file spares an exec of
// `uname`, which stays as the fallback where /proc is not mounted (the
// braces put the shell's own complaint about the file under 2>/dev/null).
//
// systemd's version is in the file name of its shared library: a glob, where
// `systemctl --version` would be an exec (kept as the fallback). sudo's
// flavour is what it says of itself: sudo-rs may be installed as `sudo`.
pub(crate) const SYSTEM_PROBE: &str = concat!(
        "if ! { IFS= read -r host < /proc/sys/kernel/hostname; } 2>/dev/null; then host=$(uname -n); fi; ",
        "if [ -r /etc/os-release ]; then . /etc/os-release; fi; ",
        "printf '%s\\n%s\\n%s\\n' \"$host\" \"${ID:-unknown}\" \"${VERSION_ID:-}\"; ",
        "systemd=; for lib in /usr/lib/systemd/libsystemd-shared-*.so /usr/lib/*/systemd/libsystemd-shared-*.so; do ",
        "if [ -e \"$lib\" ]; then systemd=${lib##*-}; systemd=${systemd%.so}; break; fi; done; ",
        "if [ -z \"$systemd\" ]; then systemd=$(systemctl --version 2>/dev/null | { read -r _ v _; echo \"$v\"; }); fi; ",
        "echo \"systemd=$systemd\"; ",
        "for s in sudo sudo-rs; do if p=$(command -v \"$s\"); then echo \"sudo=$p\"; ",
        "echo \"sudo_version=$(\"$p\" -V 2>&1 | { read -r l; echo \"$l\"; })\"; break; fi; done; ",
        "for v in visudo visudo-rs /usr/sbin/visudo; do if p=$(command -v \"$v\"); then echo \"visudo=$p\"; break; fi; done; ",
        "for c in /bin/systemctl /usr/bin/systemctl; do if [ -x \"$c\" ]; then echo \"systemctl=$c\"; fi; done"
);
