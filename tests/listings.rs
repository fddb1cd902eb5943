//! `--list-hosts` and `--list-tasks` with `--format json`: one document with each play's
//! hosts and the tasks `--tags` selects, the same lists the human listing shows,
//! without contacting any host (the example inventory's addresses are not reachable).

mod fleet;
mod support;

use support::Converge;

use serde_json::{json, Value};

/// Exit status and stdout of a listing run.
fn list(args: &[&str]) -> (Option<i32>, String) {
    let output = Converge::new().run(args);
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The JSON listing of a run with `args`, which must succeed.
fn json_listing(args: &[&str]) -> Value {
    let (code, text) = list(&[args, &["--format", "json"]].concat());
    assert_eq!(code, Some(0), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// The names of the first play's tasks in a JSON listing.
fn first_play_tasks(listing: &Value) -> Vec<&str> {
    listing["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| task["name"].as_str().unwrap())
        .collect()
}

#[test]
fn listings_in_json_show_hosts_and_selected_tasks() {
    let base = ["playbooks/sidekiq.yml", "-i", "inventory.example"];
    let (code, text) = list(
        &[
            &base[..],
            &["--list-hosts", "--list-tasks", "--format", "json"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listing["playbook"], "playbooks/sidekiq.yml");
    let play = &listing["plays"][0];
    assert_eq!(play["play"], 1);
    assert_eq!(play["name"], "Sidekiq as a system service");
    assert_eq!(play["pattern"], "app");
    assert_eq!(play["hosts"], json!(["app1", "app2", "app3"]));
    let tasks: Vec<(&str, &str)> = play["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|task| {
            (
                task["name"].as_str().unwrap(),
                task["module"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tasks,
        [
            (
                "redis and sidekiq, redis configured before it first starts",
                "package"
            ),
            ("redis listens on its socket only", "lineinfile"),
            ("redis socket", "lineinfile"),
            ("redis socket for the redis group only", "lineinfile"),
            ("redis memory limit", "lineinfile"),
            ("redis file limit", "systemd_dropin"),
            ("redis running", "service"),
            ("deploy user", "user"),
            ("deploy may use redis's socket", "user"),
            ("application directory", "directory"),
            ("releases", "directory"),
            ("release", "copy"),
            ("current release", "link"),
            ("sidekiq environment", "file"),
            ("sidekiq unit", "systemd_unit"),
            ("let deploy control sidekiq", "sudoers"),
        ]
    );

    // Only what was asked for; --tags selects tasks as in the human listing.
    let (code, text) = list(&[&base[..], &["--list-hosts", "--format", "json"]].concat());
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert!(listing["plays"][0].get("tasks").is_none(), "{listing:#}");
    let (code, text) = list(
        &[
            &base[..],
            &["--list-tasks", "--tags", "nothing", "--format", "json"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listing["plays"][0]["tasks"], json!([]), "{listing:#}");
    assert!(listing["plays"][0].get("hosts").is_none(), "{listing:#}");

    let (code, text) = list(&[
        "playbooks/deploy.yml",
        "-i",
        "inventory.example",
        "--list-tasks",
        "--tags",
        "quiet",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        listing["plays"][0]["tasks"],
        json!([{"name": "quiet sidekiq", "module": "service", "tags": ["quiet"]}])
    );
    assert_eq!(listing["plays"][1]["play"], 2);
    assert_eq!(listing["plays"][1]["tasks"], json!([]));
}

#[test]
fn listings_show_handlers_and_honour_skip_tags_and_start_at_task() {
    let base = ["playbooks/sidekiq.yml", "-i", "inventory.example"];
    let (code, text) = list(&[&base[..], &["--list-tasks", "--format", "json"]].concat());
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        listing["plays"][0]["handlers"],
        json!([
            {"name": "restart redis", "module": "service", "tags": []},
            {"name": "restart sidekiq", "module": "service", "tags": []}
        ])
    );

    let (code, text) = list(&[&base[..], &["--list-tasks"]].concat());
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("  handlers:\n    restart redis\n    restart sidekiq\n"),
        "{text}"
    );

    let (code, text) = list(&[
        "playbooks/deploy.yml",
        "-i",
        "inventory.example",
        "--list-tasks",
        "--skip-tags",
        "quiet",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listing["plays"][0]["tasks"], json!([]));
    assert_eq!(
        listing["plays"][1]["tasks"][0]["name"], "restart sidekiq",
        "{listing:#}"
    );

    let (code, text) = list(
        &[
            &base[..],
            &[
                "--list-tasks",
                "--start-at-task",
                "sidekiq unit",
                "--format",
                "json",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{text}");
    let listing: Value = serde_json::from_str(&text).unwrap();
    let names = first_play_tasks(&listing);
    assert_eq!(names, ["sidekiq unit", "let deploy control sidekiq"]);

    let output = Converge::new().run(&[&base[..], &["--start-at-task", "nope"]].concat());
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: --start-at-task: no task is named `nope`\n"
    );
}

#[test]
fn includes_are_listed_with_their_when_and_loop_before_their_tasks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("queue.yml"),
        "- name: queue dir\n  directory: { path: /tmp/queue }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.yml"), "").unwrap();
    let playbook = dir.path().join("site.yml");
    std::fs::write(
        &playbook,
        r#"- hosts: all
  tasks:
    - name: first
      command: { cmd: "true" }
    - include_tasks: queue.yml
      when: queues_enabled | default(true)
      loop: "{{ queues }}"
      tags: [queues]
    - name: every queue
      include_tasks: queue.yml
      loop: [default, mailers]
    - include_tasks: empty.yml
    - name: last
      command: { cmd: "true" }
"#,
    )
    .unwrap();
    let playbook = playbook.to_str().unwrap();
    let (code, text) = list(&[playbook, "-i", "web1,", "--list-tasks"]);
    assert_eq!(code, Some(0), "{text}");
    let tasks = text.split_once("  tasks:\n").map(|(_, tasks)| tasks);
    assert_eq!(
        tasks,
        Some(
            "    first
    include_tasks: queue.yml  when: queues_enabled | default(true)  loop: {{ queues }}  tags: [queues]
    queue dir  tags: [queues]
    every queue  loop: [\"default\",\"mailers\"]
    queue dir
    queue dir
    include_tasks: empty.yml
    last
"
        ),
        "{text}"
    );

    // As JSON; with --tags, an include is listed when it brings in a selected task.
    let listing = json_listing(&[playbook, "-i", "web1,", "--list-tasks", "--tags", "queues"]);
    assert_eq!(
        listing["plays"][0]["tasks"],
        json!([
            {
                "name": "include_tasks: queue.yml",
                "module": "include_tasks",
                "tags": ["queues"],
                "when": "queues_enabled | default(true)",
                "loop": "{{ queues }}"
            },
            {"name": "queue dir", "module": "directory", "tags": ["queues"]}
        ])
    );

    // From a task an include brings in: the include is still listed before it.
    let listing = json_listing(&[
        playbook,
        "-i",
        "web1,",
        "--list-tasks",
        "--start-at-task",
        "queue dir",
    ]);
    let names = first_play_tasks(&listing);
    assert_eq!(
        names,
        [
            "include_tasks: queue.yml",
            "queue dir",
            "every queue",
            "queue dir",
            "queue dir",
            "include_tasks: empty.yml",
            "last"
        ]
    );
}
