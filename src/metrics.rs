//! `--metrics FILE`: the run's outcome in node_exporter's textfile format, for the
//! textfile collector (`--collector.textfile.directory`) to pick up.
//!
//! The file is replaced atomically (a temporary file beside it, then a rename), so the
//! collector never reads half of it; it is readable by all (mode 0644), as the collector
//! usually runs as its own user, and holds counts and times only, no names of files or
//! contents.

use std::fmt::Write as _;

use crate::history::{HostState, RunRecord};
use crate::report::RunReport;

/// The metrics of one finished run.
pub fn render(report: &RunReport, started_ms: i64) -> String {
    let run = RunRecord::from_report(report, started_ms);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP converge_hosts Hosts of the last run by how they ended: converged, drifted (something changed or, in check mode, would), failed, unreachable.\n# TYPE converge_hosts gauge"
    );
    let states = [
        HostState::Converged,
        HostState::Drifted,
        HostState::Failed,
        HostState::Unreachable,
    ];
    for state in states {
        let count = run.hosts.iter().filter(|host| host.state == state).count();
        let _ = writeln!(out, "converge_hosts{{state=\"{}\"}} {count}", state.word());
    }
    let _ = writeln!(
        out,
        "# HELP converge_host_state The state each host ended the last run in (1 for its state, 0 for the others).\n# TYPE converge_host_state gauge"
    );
    for host in &run.hosts {
        for state in states {
            let _ = writeln!(
                out,
                "converge_host_state{{host=\"{}\",state=\"{}\"}} {}",
                label(&host.host),
                state.word(),
                u8::from(host.state == state)
            );
        }
    }
    let resources = run
        .results
        .iter()
        .filter(|result| !result.handler && result.status == "changed")
        .count();
    let seconds = |ms: i64| format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
    let _ = writeln!(
        out,
        "# HELP converge_resources_changed Tasks of the last run that changed something (in check mode: would have).\n# TYPE converge_resources_changed gauge\nconverge_resources_changed {resources}"
    );
    let _ = writeln!(
        out,
        "# HELP converge_last_run_timestamp_seconds When the last run started, in seconds since the epoch.\n# TYPE converge_last_run_timestamp_seconds gauge\nconverge_last_run_timestamp_seconds {}",
        seconds(run.started_ms)
    );
    let _ = writeln!(
        out,
        "# HELP converge_last_run_duration_seconds How long the last run took.\n# TYPE converge_last_run_duration_seconds gauge\nconverge_last_run_duration_seconds {}",
        seconds(run.duration_ms)
    );
    let _ = writeln!(
        out,
        "# HELP converge_last_run_exit_code The last run's exit status: 0 converged, 1 failed or unreachable, 2 drift found by --check.\n# TYPE converge_last_run_exit_code gauge\nconverge_last_run_exit_code {}",
        run.exit_code
    );
    let _ = writeln!(
        out,
        "# HELP converge_last_run_check 1 when the last run was a --check run.\n# TYPE converge_last_run_check gauge\nconverge_last_run_check {}",
        u8::from(report.check)
    );
    out
}

/// A label value in the exposition format: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HostStats;
    use crate::report::Summary;

    #[test]
    fn metrics_count_hosts_by_state() {
        let hosts = vec![
            HostStats {
                host: "app1".into(),
                ok: 3,
                ..HostStats::default()
            },
            HostStats {
                host: "app\"2".into(),
                ok: 3,
                changed: 2,
                ..HostStats::default()
            },
        ];
        let report = RunReport {
            format_version: 1,
            converge_version: "0.1.0",
            playbook: "site.yml".into(),
            check: true,
            duration_ms: 1_250,
            exit_code: 2,
            plays: vec![],
            summary: Summary::of(&hosts),
            hosts,
        };
        let text = render(&report, 1_795_089_603_500);
        for line in [
            "converge_hosts{state=\"converged\"} 1\n",
            "converge_hosts{state=\"drifted\"} 1\n",
            "converge_hosts{state=\"unreachable\"} 0\n",
            "converge_host_state{host=\"app\\\"2\",state=\"drifted\"} 1\n",
            "converge_last_run_timestamp_seconds 1795089603.500\n",
            "converge_last_run_duration_seconds 1.250\n",
            "converge_last_run_exit_code 2\n",
            "converge_last_run_check 1\n",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }
}
