//! `converge dashboard`: one self-contained HTML page drawn from a history store.
//!
//! Inline CSS and SVG only: no script, no web font, nothing fetched, so the page works
//! opened from disk, served by any static web server, or attached to a ticket. It shows
//! the fleet x resource matrix of latest states, how stale each host's last run is,
//! drift over time per host, and the latest runs with their changes and diffs. Every
//! text from the store is HTML-escaped.

use std::fmt::Write as _;

use similar::TextDiff;

use crate::history::time::{rfc3339, span};
use crate::history::view::matrix;
use crate::history::{HostState, RunRecord};

/// Runs listed with their diffs, newest first.
const RUNS_LISTED: usize = 40;
/// Runs drawn in each host's drift chart, the latest ones.
const RUNS_CHARTED: usize = 60;

const STYLE: &str = r#"
:root { --converged: #2e7d32; --drifted: #ef6c00; --failed: #c62828; --unreachable: #616161;
  --skipped: #90a4ae; --ink: #1d2327; --muted: #5f6b73; --line: #d9dee2; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0; padding: 24px 32px; background: #f7f8f9; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.tiles { display: flex; gap: 12px; flex-wrap: wrap; }
.tile { background: #fff; border: 1px solid var(--line); border-left: 6px solid; border-radius: 6px;
  padding: 8px 16px; min-width: 140px; }
.tile b { display: block; font-size: 24px; }
.tile.converged { border-left-color: var(--converged); } .tile.drifted { border-left-color: var(--drifted); }
.tile.failed { border-left-color: var(--failed); } .tile.unreachable { border-left-color: var(--unreachable); }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { padding: 5px 10px; border: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #eef1f3; font-weight: 600; }
td.cell { text-align: center; font-size: 12px; font-weight: 600; color: #fff; min-width: 90px; }
td.cell.converged { background: var(--converged); } td.cell.drifted { background: var(--drifted); }
td.cell.failed { background: var(--failed); } td.cell.unreachable { background: var(--unreachable); }
td.cell.skipped { background: var(--skipped); } td.cell.none { background: #fff; color: var(--muted); }
.state { font-weight: 600; } .state.converged { color: var(--converged); } .state.drifted { color: var(--drifted); }
.state.failed { color: var(--failed); } .state.unreachable { color: var(--unreachable); }
.fresh { color: var(--converged); } .stale { color: var(--failed); font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.chart h3 { font-size: 14px; margin: 0 0 4px; }
details { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 6px 12px; }
summary { cursor: pointer; }
pre { background: #f3f5f6; padding: 8px; overflow-x: auto; font-size: 12px; margin: 4px 0 8px; }
.add { color: #1b5e20; } .del { color: #b71c1c; } .hunk { color: var(--muted); }
ul { margin: 4px 0; padding-left: 20px; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; }
"#;

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page for `runs` (oldest first) read from `location`, as of `now_ms`.
pub fn render(runs: &[RunRecord], location: &str, now_ms: i64) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>converge: drift dashboard</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>converge: drift dashboard</h1>\n<p class=\"sub\">{} runs from <code>{}</code>{}; generated {}</p>\n",
        runs.len(),
        escape(location),
        match (runs.first(), runs.last()) {
            (Some(first), Some(last)) => format!(
                ", {} to {}",
                rfc3339(first.started_ms),
                rfc3339(last.started_ms)
            ),
            _ => String::new(),
        },
        rfc3339(now_ms)
    );
    let latest = latest_per_host(runs);
    tiles(&mut out, &latest);
    fleet_matrix(&mut out, runs);
    staleness(&mut out, runs, &latest, now_ms);
    charts(&mut out, runs);
    run_list(&mut out, runs);
    out.push_str("</body>\n</html>\n");
    out
}

/// Each host's latest state and the time of that run, in first-seen order.
fn latest_per_host(runs: &[RunRecord]) -> Vec<(String, HostState, i64, i64)> {
    let mut latest: indexmap::IndexMap<String, (HostState, i64, i64)> = indexmap::IndexMap::new();
    for run in runs {
        for host in &run.hosts {
            latest.insert(host.host.clone(), (host.state, run.id, run.started_ms));
        }
    }
    latest
        .into_iter()
        .map(|(host, (state, run, at))| (host, state, run, at))
        .collect()
}

fn tiles(out: &mut String, latest: &[(String, HostState, i64, i64)]) {
    out.push_str("<div class=\"tiles\" id=\"summary\">\n");
    for state in [
        HostState::Converged,
        HostState::Drifted,
        HostState::Failed,
        HostState::Unreachable,
    ] {
        let count = latest.iter().filter(|(_, s, _, _)| *s == state).count();
        let _ = writeln!(
            out,
            "<div class=\"tile {word}\" data-state=\"{word}\"><b>{count}</b>{word} host{}</div>",
            if count == 1 { "" } else { "s" },
            word = state.word()
        );
    }
    out.push_str("</div>\n");
}

fn fleet_matrix(out: &mut String, runs: &[RunRecord]) {
    let matrix = matrix(runs);
    out.push_str(
        "<h2>Latest state of every resource</h2>\n<table id=\"matrix\">\n<thead><tr><th>host</th>",
    );
    for resource in &matrix.resources {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(resource));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for host in &matrix.hosts {
        let _ = write!(
            out,
            "<tr data-host=\"{h}\"><th scope=\"row\">{h}</th>",
            h = escape(host)
        );
        for resource in &matrix.resources {
            match matrix.cells.get(&(host.clone(), resource.clone())) {
                Some(cell) => {
                    let mut title = format!("run #{} at {}", cell.run, rfc3339(cell.at_ms));
                    for change in &cell.changes {
                        let _ = write!(title, "\n{change}");
                    }
                    if let Some(message) = &cell.message {
                        let _ = write!(title, "\n{message}");
                    }
                    let _ = write!(
                        out,
                        "<td class=\"cell {w}\" data-host=\"{h}\" data-resource=\"{r}\" data-state=\"{w}\" title=\"{t}\">{w}</td>",
                        w = cell.state.word(),
                        h = escape(host),
                        r = escape(resource),
                        t = escape(&title)
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<td class=\"cell none\" data-host=\"{}\" data-resource=\"{}\" data-state=\"none\">&ndash;</td>",
                        escape(host),
                        escape(resource)
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The median time between a host's runs, or `None` with fewer than two runs.
fn usual_interval(times: &[i64]) -> Option<i64> {
    let mut gaps: Vec<i64> = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

fn staleness(
    out: &mut String,
    runs: &[RunRecord],
    latest: &[(String, HostState, i64, i64)],
    now_ms: i64,
) {
    out.push_str(
        "<h2>Last run per host</h2>\n<table id=\"staleness\">\n<thead><tr><th>host</th><th>state</th>\
         <th>last run</th><th>age</th><th>usual interval</th></tr></thead>\n<tbody>\n",
    );
    for (host, state, run, at) in latest {
        let times: Vec<i64> = runs
            .iter()
            .filter(|r| r.hosts.iter().any(|h| h.host == *host))
            .map(|r| r.started_ms)
            .collect();
        let interval = usual_interval(&times);
        let age = now_ms - at;
        // Stale: three usual intervals without a run, or a day when there is no usual.
        let limit = interval.map_or(86_400_000, |interval| (3 * interval).max(60_000));
        let class = if age > limit { "stale" } else { "fresh" };
        let _ = writeln!(
            out,
            "<tr data-host=\"{h}\"><th scope=\"row\">{h}</th><td class=\"state {s}\">{s}</td>\
             <td>#{run} at {}</td><td class=\"{class}\" data-age-ms=\"{age}\">{} ago{}</td><td>{}</td></tr>",
            rfc3339(*at),
            span(age),
            if class == "stale" { " (stale)" } else { "" },
            interval.map_or_else(|| "&ndash;".to_owned(), span),
            h = escape(host),
            s = state.word(),
        );
    }
    out.push_str("</tbody>\n</table>\n");
}

fn color(state: HostState) -> &'static str {
    match state {
        HostState::Converged => "#2e7d32",
        HostState::Drifted => "#ef6c00",
        HostState::Failed => "#c62828",
        HostState::Unreachable => "#616161",
    }
}

/// Per host, one bar per run (the latest [`RUNS_CHARTED`]): its height is how many
/// resources drifted, its colour how the host ended the run.
fn charts(out: &mut String, runs: &[RunRecord]) {
    let shown = &runs[runs.len().saturating_sub(RUNS_CHARTED)..];
    out.push_str(
        "<h2>Drift over time</h2>\n<p class=\"sub legend\">One bar per run, as high as the \
         number of resources that drifted;\
         <span style=\"background:#2e7d32\"></span>converged<span style=\"background:#ef6c00\"></span>drifted\
         <span style=\"background:#c62828\"></span>failed<span style=\"background:#616161\"></span>unreachable</p>\n\
         <div class=\"charts\">\n",
    );
    let hosts: Vec<String> = latest_per_host(runs)
        .into_iter()
        .map(|(host, ..)| host)
        .collect();
    let (width, height, left, bottom) = (340.0_f64, 110.0_f64, 26.0_f64, 18.0_f64);
    for host in &hosts {
        let points: Vec<(&RunRecord, HostState, usize)> = shown
            .iter()
            .filter_map(|run| {
                let record = run.hosts.iter().find(|h| h.host == *host)?;
                let drifted = run
                    .results
                    .iter()
                    .filter(|r| r.host == *host && !r.handler && r.status == "changed")
                    .count();
                Some((run, record.state, drifted))
            })
            .collect();
        let most = points.iter().map(|p| p.2).max().unwrap_or(0).max(1);
        let most_f = f64::from(u32::try_from(most).unwrap_or(u32::MAX));
        let slots = f64::from(u32::try_from(points.len().max(1)).unwrap_or(u32::MAX));
        let slot = (width - left) / slots;
        let plot = height - bottom - 6.0;
        let _ = write!(
            out,
            "<div class=\"chart\" data-host=\"{h}\"><h3>{h}</h3>\
             <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" \
             aria-label=\"drift over time on {h}\">\
             <line x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#9aa5ad\"/>\
             <text x=\"{lx}\" y=\"12\" font-size=\"10\" text-anchor=\"end\" fill=\"#5f6b73\">{most}</text>\
             <text x=\"{lx}\" y=\"{base}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5f6b73\">0</text>",
            h = escape(host),
            base = height - bottom,
            lx = left - 4.0,
        );
        for (index, (run, state, drifted)) in points.iter().enumerate() {
            let x = left + slot * f64::from(u32::try_from(index).unwrap_or(u32::MAX)) + slot * 0.15;
            let bar = if *drifted == 0 {
                2.0
            } else {
                plot * f64::from(u32::try_from(*drifted).unwrap_or(u32::MAX)) / most_f
            };
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{}\" data-run=\"{}\">\
                 <title>run #{} at {}: {} ({drifted} drifted)</title></rect>",
                height - bottom - bar,
                (slot * 0.7).max(1.0),
                color(*state),
                run.id,
                run.id,
                rfc3339(run.started_ms),
                state.word()
            );
        }
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            let _ = write!(
                out,
                "<text x=\"{left}\" y=\"{height}\" font-size=\"10\" fill=\"#5f6b73\">{}</text>\
                 <text x=\"{width}\" y=\"{height}\" font-size=\"10\" text-anchor=\"end\" fill=\"#5f6b73\">{}</text>",
                rfc3339(first.0.started_ms),
                rfc3339(last.0.started_ms)
            );
        }
        out.push_str("</svg></div>\n");
    }
    out.push_str("</div>\n");
}

fn diff_html(out: &mut String, path: &str, before: Option<&str>, after: &str) {
    let text = TextDiff::from_lines(before.unwrap_or(""), after)
        .unified_diff()
        .context_radius(3)
        .header(
            &if before.is_some() {
                format!("{path} (before)")
            } else {
                "/dev/null".to_owned()
            },
            &format!("{path} (after)"),
        )
        .to_string();
    out.push_str("<pre class=\"diff\">");
    for line in text.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@")
        {
            "hunk"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else {
            ""
        };
        let _ = writeln!(out, "<span class=\"{class}\">{}</span>", escape(line));
    }
    out.push_str("</pre>\n");
}

fn run_list(out: &mut String, runs: &[RunRecord]) {
    let _ = writeln!(
        out,
        "<h2>Runs</h2>\n<p class=\"sub\">The latest {} of {} runs, newest first.</p>\n<div id=\"runs\">",
        runs.len().min(RUNS_LISTED),
        runs.len()
    );
    for run in runs.iter().rev().take(RUNS_LISTED) {
        let drifted: Vec<_> = run
            .results
            .iter()
            .filter(|r| !r.handler && r.status == "changed")
            .collect();
        let failed: Vec<_> = run
            .results
            .iter()
            .filter(|r| r.status == "failed" || r.status == "unreachable")
            .collect();
        let _ = writeln!(
            out,
            "<details data-run=\"{id}\"{open}><summary>#{id} {at} <b>{mode}</b> {playbook}: exit {exit}, \
             {hosts} hosts, {d} drifted, {f} failed or unreachable ({secs:.1} s)</summary>",
            id = run.id,
            open = if run.id == runs.last().map_or(0, |r| r.id) { " open" } else { "" },
            at = rfc3339(run.started_ms),
            mode = escape(&run.mode),
            playbook = escape(&run.playbook),
            exit = run.exit_code,
            hosts = run.hosts.len(),
            d = drifted.len(),
            f = failed.len(),
            secs = f64::from(u32::try_from(run.duration_ms).unwrap_or(u32::MAX)) / 1000.0,
        );
        if drifted.is_empty() && failed.is_empty() {
            out.push_str("<p>Nothing drifted, nothing failed.</p>\n");
        }
        let verb = if run.mode == "check" { "would " } else { "" };
        for result in drifted {
            let _ = write!(
                out,
                "<p><b>{}</b>: {}</p>\n<ul>",
                escape(&result.host),
                escape(&result.task)
            );
            for change in &result.changes {
                let _ = write!(out, "<li>{verb}{}</li>", escape(change));
            }
            out.push_str("</ul>\n");
            for diff in &result.diffs {
                diff_html(out, &diff.path, diff.before.as_deref(), &diff.after);
            }
        }
        for result in failed {
            let _ = writeln!(
                out,
                "<p><b>{}</b>: {}: <span class=\"state failed\">{}</span> {}</p>",
                escape(&result.host),
                escape(&result.task),
                escape(&result.status),
                escape(result.message.as_deref().unwrap_or(""))
            );
        }
        out.push_str("</details>\n");
    }
    out.push_str("</div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::tests::run;

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_shows() {
        let mut runs = vec![
            run(
                1_000,
                &[
                    ("app1", &[("unit", "changed")]),
                    ("app<2>", &[("unit", "ok")]),
                ],
            ),
            run(
                2_000,
                &[
                    ("app1", &[("unit", "ok")]),
                    ("app<2>", &[("unit", "changed")]),
                ],
            ),
        ];
        runs[0].id = 1;
        runs[1].id = 2;
        let page = render(&runs, "/var/lib/converge/history.db", 3_000);
        assert!(!page.contains("<script"), "{page}");
        assert!(
            !page.contains(" src=") && !page.contains(" href="),
            "{page}"
        );
        assert!(!page.contains("app<2>"), "{page}");
        assert!(
            page.contains(
                "data-host=\"app&lt;2&gt;\" data-resource=\"unit\" data-state=\"drifted\""
            ),
            "{page}"
        );
        assert!(
            page.contains("data-host=\"app1\" data-resource=\"unit\" data-state=\"converged\""),
            "{page}"
        );
        assert!(
            page.contains("<span class=\"add\">+new &lt;b&gt;</span>"),
            "{page}"
        );
    }
}
