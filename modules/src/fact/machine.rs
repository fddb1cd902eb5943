//! The machine fact: what a playbook branches on about the hardware and the network
//! (architecture, CPUs, memory, kernel, OS family and codename, the default route's
//! interface and IPv4 address). Read in the same batched command as every other fact,
//! mostly with shell builtins; a play with `gather_facts: false` does not ask for it.

use serde::Serialize;

/// The hardware and network facts of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct MachineInfo {
    /// The kernel's machine name, e.g. `x86_64` or `aarch64`.
    pub architecture: String,
    /// Processors online (`processor` lines of `/proc/cpuinfo`); `None` when unknown.
    pub cpu_count: Option<u32>,
    /// Total memory in MiB (`MemTotal` of `/proc/meminfo`); `None` when unknown.
    pub memory_mb: Option<u64>,
    /// The kernel release, e.g. `6.1.0-18-amd64`.
    pub kernel: String,
    /// The first word of os-release's `ID_LIKE`, or its `ID`: `debian` on Ubuntu too.
    pub os_family: String,
    /// os-release's `VERSION_CODENAME`, e.g. `bookworm`; empty without one.
    pub os_codename: String,
    /// The interface of the default IPv4 route; `None` without a default route.
    pub default_interface: Option<String>,
    /// The source address the kernel picks for the default route; `None` without
    /// one.
    pub default_ipv4: Option<String>,
}

/// The `sh` snippet that prints [`MachineInfo`] as `name=value` lines.
// Builtins only, except `uname -m` where /proc/sys/kernel/arch is missing (kernels
// before 6.1) and one `ip route get` when there is a default route.
pub(crate) const MACHINE_PROBE: &str = concat!(
    "if ! { IFS= read -r a < /proc/sys/kernel/arch; } 2>/dev/null; then a=$(uname -m); fi; echo \"arch=$a\"; ",
    "if { IFS= read -r k < /proc/sys/kernel/osrelease; } 2>/dev/null; then echo \"kernel=$k\"; fi; ",
    "n=0; if [ -r /proc/cpuinfo ]; then while IFS= read -r l; do case $l in processor*) n=$((n + 1));; esac; done < /proc/cpuinfo; echo \"cpus=$n\"; fi; ",
    "if [ -r /proc/meminfo ]; then while read -r k v _; do if [ \"$k\" = MemTotal: ]; then echo \"memory_kb=$v\"; break; fi; done < /proc/meminfo; fi; ",
    "if [ -r /etc/os-release ]; then . /etc/os-release; fi; ",
    "echo \"family=${ID_LIKE:-${ID:-}}\"; echo \"codename=${VERSION_CODENAME:-}\"; ",
    "if [ -r /proc/net/route ]; then while read -r i d _; do if [ \"$d\" = 00000000 ]; then echo \"interface=$i\"; ",
    "echo \"route=$(ip -4 -o route get 1.1.1.1 2>/dev/null | { read -r r; echo \"$r\"; })\"; break; fi; done < /proc/net/route; fi"
);

/// Parses [`MACHINE_PROBE`]'s output; `None` without the architecture line.
pub(crate) fn parse_machine(output: &str) -> Option<MachineInfo> {
    let mut info = MachineInfo::default();
    let mut seen_arch = false;
    for line in output.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name {
            "arch" => {
                seen_arch = true;
                value.clone_into(&mut info.architecture);
            }
            "kernel" => value.clone_into(&mut info.kernel),
            "cpus" => info.cpu_count = value.parse().ok().filter(|n| *n > 0),
            "memory_kb" => info.memory_mb = value.parse::<u64>().ok().map(|kb| kb / 1024),
            "family" => {
                value
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .clone_into(&mut info.os_family);
            }
            "codename" => value.clone_into(&mut info.os_codename),
            "interface" => info.default_interface = Some(value.to_owned()),
            "route" => info.default_ipv4 = source_address(value),
            _ => {}
        }
    }
    seen_arch.then_some(info)
}

/// The `src` address of one line of `ip -4 -o route get`:
/// `1.1.1.1 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \    cache`.
fn source_address(route: &str) -> Option<String> {
    let mut words = route.split_whitespace();
    while let Some(word) = words.next() {
        if word == "src" {
            return words
                .next()
                .filter(|address| address.parse::<std::net::Ipv4Addr>().is_ok())
                .map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_host_with_a_default_route() {
        let output = "arch=x86_64\nkernel=6.1.0-18-amd64\ncpus=4\nmemory_kb=16315996\nfamily=\ncodename=bookworm\ninterface=eth0\nroute=1.1.1.1 via 10.0.0.1 dev eth0 src 10.0.0.5 uid 0 \\    cache \n";
        // Debian has no ID_LIKE: the probe prints its ID.
        let output = output.replace("family=\n", "family=debian\n");
        assert_eq!(
            parse_machine(&output),
            Some(MachineInfo {
                architecture: "x86_64".into(),
                cpu_count: Some(4),
                memory_mb: Some(15933),
                kernel: "6.1.0-18-amd64".into(),
                os_family: "debian".into(),
                os_codename: "bookworm".into(),
                default_interface: Some("eth0".into()),
                default_ipv4: Some("10.0.0.5".into()),
            })
        );
    }

    #[test]
    fn an_ubuntu_family_is_debian_and_no_route_is_none() {
        let info =
            parse_machine("arch=aarch64\ncpus=2\nfamily=debian ubuntu\ncodename=noble\n").unwrap();
        assert_eq!(info.os_family, "debian");
        assert_eq!(info.cpu_count, Some(2));
        assert_eq!(info.memory_mb, None);
        assert_eq!(info.default_interface, None);
        assert_eq!(info.default_ipv4, None);
        // A default route whose lookup failed (no `ip`): the interface, no address.
        let info = parse_machine("arch=x86_64\ninterface=ens3\nroute=\n").unwrap();
        assert_eq!(info.default_interface.as_deref(), Some("ens3"));
        assert_eq!(info.default_ipv4, None);
    }

    #[test]
    fn output_without_the_architecture_is_not_understood() {
        assert_eq!(parse_machine(""), None);
        assert_eq!(parse_machine("cpus=2\n"), None);
    }

    #[test]
    fn the_probe_runs_in_a_posix_shell() {
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(MACHINE_PROBE)
            .output()
            .unwrap();
        let info = parse_machine(&String::from_utf8_lossy(&output.stdout)).unwrap();
        assert!(!info.architecture.is_empty());
        assert!(info.cpu_count.is_some_and(|n| n >= 1));
        assert!(info.memory_mb.is_some_and(|mb| mb > 0));
    }
}
