//! Roles and reused tasks on scripted hosts: each role instance's own variables,
//! precedence, dependencies, files found in the role, handlers per instance, and
//! `import_tasks`/`include_tasks`.

use std::path::PathBuf;

use super::*;

/// A playbook directory holding `files` (relative path, content); returns it and the
/// playbook's path (`site.yml`).
fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let site = dir.path().join("site.yml");
    (dir, site)
}

fn run_project(files: &[(&str, &str)], host: &FakeHost, mode: Mode) -> Run {
    let (_dir, site) = project(files);
    let playbook = Playbook::load(&site).expect("the playbook loads");
    converge_playbook(&playbook, &[("web1", host)], mode)
}

fn load_error(files: &[(&str, &str)]) -> String {
    let (dir, site) = project(files);
    let error = Playbook::load(&site).unwrap_err().to_string();
    error.replace(&format!("{}/", dir.path().display()), "")
}

fn titles(run: &Run) -> Vec<String> {
    run.tasks("web1").iter().map(|t| t.task.clone()).collect()
}

const SIDEKIQ_ROLE: [(&str, &str); 4] = [
    (
        "roles/worker/defaults/main.yml",
        "queue: default\nconcurrency: 5\nunit: \"worker-{{ queue }}\"\n",
    ),
    (
        "roles/worker/tasks/main.yml",
        "- name: unit\n  file: { path: \"/etc/{{ unit }}.conf\", content: \"{{ queue }} {{ concurrency }}\\n\" }\n  notify: restart\n",
    ),
    (
        "roles/worker/handlers/main.yml",
        "- name: restart\n  file: { path: \"/run/restarted-{{ unit }}\", content: \"c={{ concurrency }}\" }\n",
    ),
    ("roles/worker/templates/.keep", ""),
];

#[test]
fn two_instances_of_a_role_each_see_their_own_variables_and_handlers() {
    let mut files = SIDEKIQ_ROLE.to_vec();
    files.push((
        "site.yml",
        "- hosts: all\n  roles:\n    - worker\n    - { role: worker, queue: mailers, vars: { concurrency: 2 } }\n  tasks:\n    - file: { path: /etc/after, content: \"{{ queue | default('none') }}\" }\n",
    ));
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    assert_eq!(
        titles(&run),
        [
            "worker : unit",
            "worker : unit",
            "file /etc/after",
            "worker : restart",
            "worker : restart"
        ]
    );
    assert_eq!(
        content(&host, "/etc/worker-default.conf").as_deref(),
        Some("default 5\n")
    );
    assert_eq!(
        content(&host, "/etc/worker-mailers.conf").as_deref(),
        Some("mailers 2\n")
    );
    // Each instance's handler restarts its own, with its own variables.
    assert_eq!(
        content(&host, "/run/restarted-worker-default").as_deref(),
        Some("c=5")
    );
    assert_eq!(
        content(&host, "/run/restarted-worker-mailers").as_deref(),
        Some("c=2")
    );
    // The play's own tasks see no role's variables.
    assert_eq!(content(&host, "/etc/after").as_deref(), Some("none"));
    // A second run changes nothing and notifies nothing.
    let again = run_project(&files, &host, apply());
    assert!(
        again.statuses("web1").iter().all(|s| *s == Status::Ok),
        "{:?}",
        again.statuses("web1")
    );
    assert_eq!(again.tasks("web1").len(), 3);
}

#[test]
fn role_defaults_lie_under_inventory_play_vars_role_vars_and_params() {
    let files = [
        (
            "roles/r/defaults/main.yml",
            "a: default\nb: default\nc: default\nd: default\ne: default\n",
        ),
        ("roles/r/vars/main.yml", "d: role_vars\ne: role_vars\n"),
        (
            "roles/r/tasks/main.yml",
            "- file: { path: /etc/order, content: \"{{ a }} {{ b }} {{ c }} {{ d }} {{ e }}\" }\n",
        ),
        (
            "site.yml",
            "- hosts: all\n  vars: { c: play, d: play, e: play }\n  roles:\n    - { role: r, e: param }\n",
        ),
    ];
    let host = FakeHost::new();
    let mut mode = apply();
    mode.inventory_vars = [("b", "inventory"), ("c", "inventory"), ("d", "inventory")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    run_project(&files, &host, mode);
    assert_eq!(
        content(&host, "/etc/order").as_deref(),
        Some("default inventory play role_vars param")
    );
}

#[test]
fn dependencies_run_first_once_per_distinct_parameters() {
    let files = [
        ("roles/common/defaults/main.yml", "n: 1\n"),
        (
            "roles/common/tasks/main.yml",
            "- name: \"common {{ n }}\"\n  file: { path: \"/etc/common-{{ n }}\", content: x }\n",
        ),
        (
            "roles/app/meta/main.yml",
            "galaxy_info: { author: me }\ndependencies:\n  - common\n  - { role: common, n: 2 }\n",
        ),
        (
            "roles/app/tasks/main.yml",
            "- file: { path: /etc/app, content: x }\n",
        ),
        ("roles/web/meta/main.yml", "dependencies: [common]\n"),
        (
            "roles/web/tasks/main.yml",
            "- file: { path: /etc/web, content: x }\n",
        ),
        ("site.yml", "- hosts: all\n  roles: [app, web]\n"),
    ];
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    assert_eq!(
        titles(&run),
        [
            "common : common {{ n }}",
            "common : common {{ n }}",
            "app : file /etc/app",
            "web : file /etc/web"
        ]
    );
    assert!(content(&host, "/etc/common-1").is_some());
    assert!(content(&host, "/etc/common-2").is_some());
}

#[test]
fn a_roles_templates_and_files_are_found_in_the_role_first() {
    let files = [
        ("roles/r/templates/unit.j2", "role {{ inventory_hostname }}\n"),
        ("roles/r/files/only-role.txt", "from the role\n"),
        ("templates/unit.j2", "playbook\n"),
        ("files/shared.txt", "shared\n"),
        (
            "roles/r/tasks/main.yml",
            "- file: { path: /etc/a, template: unit.j2 }\n- file: { path: /etc/b, src: only-role.txt }\n- file: { path: /etc/c, src: shared.txt }\n",
        ),
        (
            "site.yml",
            "- hosts: all\n  roles: [r]\n  tasks:\n    - file: { path: /etc/d, template: unit.j2 }\n",
        ),
    ];
    let host = FakeHost::new();
    run_project(&files, &host, apply());
    assert_eq!(content(&host, "/etc/a").as_deref(), Some("role web1\n"));
    assert_eq!(content(&host, "/etc/b").as_deref(), Some("from the role\n"));
    assert_eq!(content(&host, "/etc/c").as_deref(), Some("shared\n"));
    assert_eq!(content(&host, "/etc/d").as_deref(), Some("playbook\n"));
}

#[test]
fn role_when_and_tags_apply_to_its_tasks() {
    let files = [
        ("roles/r/tasks/main.yml", "- file: { path: \"/etc/{{ what }}\", content: x }\n"),
        (
            "site.yml",
            "- hosts: all\n  roles:\n    - { role: r, what: on, when: \"what == 'on'\", tags: [web] }\n    - { role: r, what: off, when: false }\n    - { role: r, what: untagged }\n    - { role: r, what: as-app, become_user: app, tags: web }\n",
        ),
    ];
    let host = FakeHost::new();
    let mut mode = apply();
    mode.tags = vec!["web".to_owned()];
    let run = run_project(&files, &host, mode);
    assert!(content(&host, "/etc/on").is_some());
    assert!(content(&host, "/etc/off").is_none());
    assert!(content(&host, "/etc/untagged").is_none());
    assert_eq!(run.statuses("web1")[0], Status::Changed);
    assert_eq!(sudo_users(&host), [None, Some("app".to_owned())]);
}

#[test]
fn import_tasks_and_include_tasks_bring_in_a_files_tasks() {
    let files = [
        (
            "common.yml",
            "- file: { path: \"/etc/{{ what }}-{{ item | default('once') }}\", content: x }\n",
        ),
        ("roles/r/tasks/main.yml", "- import_tasks: extra.yml\n  vars: { what: role }\n"),
        ("roles/r/tasks/extra.yml", "- file: { path: \"/etc/{{ what }}\", content: x }\n"),
        (
            "site.yml",
            "- hosts: all\n  roles: [r]\n  tasks:\n    - import_tasks: common.yml\n      vars: { what: imported }\n      tags: [imp]\n    - include_tasks: common.yml\n      vars: { what: looped }\n      loop: [a, b]\n    - include_tasks: common.yml\n      vars: { what: skipped }\n      when: false\n",
        ),
    ];
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    for path in [
        "/etc/role",
        "/etc/imported-once",
        "/etc/looped-a",
        "/etc/looped-b",
    ] {
        assert!(content(&host, path).is_some(), "{path}");
    }
    assert!(content(&host, "/etc/skipped-once").is_none());
    assert_eq!(run.statuses("web1").len(), 5);
    let (_dir, site) = project(&files);
    let playbook = Playbook::load(&site).unwrap();
    assert_eq!(playbook.plays[0].tasks[1].tags, ["imp"]);
}

#[test]
fn import_role_runs_a_roles_tasks_from_another_file() {
    let files = [
        ("roles/r/defaults/main.yml", "who: default\n"),
        ("roles/r/tasks/setup.yml", "- file: { path: \"/etc/setup-{{ who }}\", content: x }\n"),
        (
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_role: { name: r, tasks_from: setup }\n      vars: { who: me }\n    - include_role: { name: r, tasks_from: setup.yml }\n    - import_role: { name: r, tasks_from: setup }\n      vars: { who: me }\n",
        ),
    ];
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    // Imported twice with the same parameters, the role runs twice, as in Ansible.
    assert_eq!(
        run.statuses("web1"),
        [Status::Changed, Status::Changed, Status::Ok]
    );
    assert!(content(&host, "/etc/setup-me").is_some());
    assert!(content(&host, "/etc/setup-default").is_some());
}

#[test]
fn role_and_import_errors_are_located_with_the_fix() {
    assert_eq!(
        load_error(&[("site.yml", "- hosts: all\n  roles:\n    - web\n")]),
        "site.yml:3:7: role `web` not found\n  help: looked for the directory roles/web and web; a role is roles/web/tasks/main.yml beside the playbook"
    );
    assert_eq!(
        load_error(&[
            ("roles/app/meta/main.yml", "dependencies:\n  - { role: nope }\n"),
            ("site.yml", "- hosts: all\n  roles: [app]\n"),
        ]),
        "roles/app/meta/main.yml:2:5: role `nope` not found\n  help: looked for the directory roles/nope and nope; a role is roles/nope/tasks/main.yml beside the playbook"
    );
    assert_eq!(
        load_error(&[(
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_tasks: gone.yml\n"
        )]),
        "site.yml:3:21: tasks file `gone.yml` not found\n  help: looked for gone.yml"
    );
    assert_eq!(
        load_error(&[
            ("loop.yml", "- import_tasks: loop.yml\n"),
            ("site.yml", "- hosts: all\n  tasks:\n    - import_tasks: loop.yml\n"),
        ]),
        "loop.yml:1:17: imports nest more than 32 deep\n  help: a file imports itself, directly or through others"
    );
    assert!(load_error(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - import_tasks: x.yml\n      register: r\n"
    )])
    .starts_with("site.yml:3:7: `register` belongs on a task, not on `import_tasks`"));
    assert!(load_error(&[(
        "site.yml",
        "- hosts: all\n  roles:\n    - { role: r, 2x: 1 }\n"
    )])
    .contains("`2x` is not a role parameter"));
    assert_eq!(
        load_error(&[
            ("t.yml", "- file: { path: /x, mdoe: 1 }\n"),
            (
                "site.yml",
                "- hosts: all\n  tasks:\n    - import_tasks: t.yml\n"
            ),
        ])
        .lines()
        .next()
        .unwrap(),
        "t.yml:1:21: unknown key `mdoe`"
    );
}

#[test]
fn an_includes_when_is_decided_once_and_an_imports_for_each_task() {
    let files = [
        (
            "flip.yml",
            "- set_fact: { go: false }\n- file: { path: \"/etc/{{ kind }}\", content: x }\n",
        ),
        (
            "site.yml",
            "- hosts: all\n  vars: { go: true }\n  tasks:\n    - include_tasks: flip.yml\n      vars: { kind: included }\n      when: go\n    - set_fact: { go: true }\n    - import_tasks: flip.yml\n      vars: { kind: imported }\n      when: go\n",
        ),
    ];
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    assert!(content(&host, "/etc/included").is_some());
    assert!(content(&host, "/etc/imported").is_none());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Ok,
            Status::Changed,
            Status::Ok,
            Status::Ok,
            Status::Skipped
        ]
    );
}

#[test]
fn include_tasks_loops_over_a_template_rendered_on_the_host() {
    let files = [
        (
            "queue.yml",
            "- file: { path: \"/etc/queue-{{ queue }}\", content: \"{{ queue }} of {{ queues | length }}\" }\n- debug: { msg: \"{{ queue }}\" }\n",
        ),
        (
            "site.yml",
            "- hosts: all\n  vars: { queues: [default, mailers, slow] }\n  tasks:\n    - include_tasks: queue.yml\n      loop: \"{{ queues }}\"\n      loop_control: { loop_var: queue }\n      when: queue != 'slow'\n",
        ),
    ];
    let host = FakeHost::new();
    let run = run_project(&files, &host, apply());
    assert_eq!(
        content(&host, "/etc/queue-default").as_deref(),
        Some("default of 3")
    );
    assert_eq!(
        content(&host, "/etc/queue-mailers").as_deref(),
        Some("mailers of 3")
    );
    assert!(content(&host, "/etc/queue-slow").is_none());
    assert_eq!(
        run.statuses("web1"),
        [
            Status::Changed,
            Status::Ok,
            Status::Changed,
            Status::Ok,
            Status::Skipped,
            Status::Skipped
        ]
    );
    let messages: Vec<Option<&str>> = run
        .tasks("web1")
        .iter()
        .map(|task| task.message.as_deref())
        .collect();
    assert_eq!(messages[1], Some("default"));
    assert_eq!(messages[3], Some("mailers"));
    // A second run changes nothing.
    let again = run_project(&files, &host, apply());
    assert!(!again.statuses("web1").contains(&Status::Changed));
    // Check mode on a fresh host predicts the same.
    let fresh = FakeHost::new();
    let predicted = run_project(&files, &fresh, check());
    assert_eq!(predicted.changes("web1"), run.changes("web1"));
}

#[test]
fn role_names_the_role_and_name_beside_it_is_a_label_whatever_the_order() {
    for entry in [
        "{ role: worker, name: mailer workers, queue: mailers }",
        "{ name: mailer workers, role: worker, queue: mailers }",
        "{ name: worker, queue: mailers }",
    ] {
        let mut files = SIDEKIQ_ROLE.to_vec();
        let site = format!("- hosts: all\n  roles:\n    - {entry}\n");
        files.push(("site.yml", &site));
        let host = FakeHost::new();
        let run = run_project(&files, &host, apply());
        assert_eq!(titles(&run)[0], "worker : unit", "{entry}");
        assert_eq!(
            content(&host, "/etc/worker-mailers.conf").as_deref(),
            Some("mailers 5\n"),
            "{entry}"
        );
    }
}
