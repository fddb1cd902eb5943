//! Which tasks a run selects: `--tags` and `--skip-tags` with Ansible's special tags,
//! and `--start-at-task`.

use super::{Node, Playbook};

/// The tags a run asks for (`--tags`) and leaves out (`--skip-tags`).
///
/// As in Ansible: a task with a skipped tag never runs; with no `--tags` every other
/// task runs; otherwise a task runs when one of its tags is asked for, when it is
/// tagged `always`, or by the special tags `all` (every task), `tagged` (every task
/// with a tag) and `untagged` (every task without one). A task tagged `never` runs only
/// when one of its tags (`never` included) is asked for by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    /// A filter selecting by `only`, skipping nothing.
    #[cfg(test)]
    pub fn only(only: Vec<String>) -> Self {
        TagFilter {
            only,
            skip: Vec::new(),
        }
    }

    /// Whether a task with `tags` runs.
    pub fn selects(&self, tags: &[String]) -> bool {
        let has = |tag: &str| tags.iter().any(|t| t == tag);
        let asked = |tag: &str| self.only.iter().any(|t| t == tag);
        if tags.iter().any(|tag| self.skip.contains(tag)) {
            return false;
        }
        let named = tags.iter().any(|tag| self.only.contains(tag));
        if has("never") {
            return named;
        }
        self.only.is_empty()
            || named
            || has("always")
            || asked("all")
            || (asked("tagged") && !tags.is_empty())
            || (asked("untagged") && tags.is_empty())
    }
}

/// `--start-at-task NAME` named no task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--start-at-task: no task is named `{name}`")]
pub struct NoSuchTask {
    pub name: String,
}

impl Playbook {
    /// Starts the run at the first task named `name`: the plays before its play and
    /// the tasks before it in its play are dropped (their handlers stay).
    pub fn start_at_task(&mut self, name: &str) -> Result<(), NoSuchTask> {
        let found = self.plays.iter().enumerate().find_map(|(play, p)| {
            p.tasks
                .iter()
                .position(|task| task.title() == name)
                .map(|task| (play, task))
        });
        let Some((play, task)) = found else {
            return Err(NoSuchTask {
                name: name.to_owned(),
            });
        };
        self.plays.drain(..play);
        let first = &mut self.plays[0];
        first.tasks.drain(..task);
        first.body = after(std::mem::take(&mut first.body), task);
        // An include stays listed while it still brings a task in.
        first.includes.retain(|include| include.tasks.end > task);
        for include in &mut first.includes {
            include.tasks = include.tasks.start.saturating_sub(task)..include.tasks.end - task;
        }
        Ok(())
    }
}

/// The tree of `nodes` without the tasks before `start` (by index into the play's
/// flat list), the others' indices moved down by `start`; a block left with nothing
/// goes.
fn after(nodes: Vec<Node>, start: usize) -> Vec<Node> {
    nodes
        .into_iter()
        .filter_map(|node| match node {
            Node::Task(index) => index.checked_sub(start).map(Node::Task),
            Node::Block {
                block,
                rescue,
                always,
            } => {
                let (block, rescue, always) = (
                    after(block, start),
                    after(rescue, start),
                    after(always, start),
                );
                let empty = block.is_empty() && rescue.is_empty() && always.is_empty();
                (!empty).then_some(Node::Block {
                    block,
                    rescue,
                    always,
                })
            }
            Node::Include { when, each, body } => {
                let body = after(body, start);
                (!body.is_empty()).then_some(Node::Include { when, each, body })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|&t| t.to_owned()).collect()
    }

    /// `--tags`, `--skip-tags`, the task's tags, whether it runs.
    type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], bool);

    #[test]
    fn tags_select_as_in_ansible() {
        let filter = |only: &[&str], skip: &[&str]| TagFilter {
            only: tags(only),
            skip: tags(skip),
        };
        let cases: &[Case] = &[
            (&[], &[], &[], true),
            (&[], &[], &["a"], true),
            (&["a"], &[], &["a", "b"], true),
            (&["a"], &[], &["b"], false),
            (&["a"], &[], &[], false),
            (&["a"], &[], &["always"], true),
            (&[], &["a"], &["a"], false),
            (&[], &["a"], &["b"], true),
            (&[], &["a"], &[], true),
            (&["a"], &["b"], &["a", "b"], false),
            (&[], &["always"], &["always"], false),
            (&["all"], &[], &["x"], true),
            (&["tagged"], &[], &["x"], true),
            (&["tagged"], &[], &[], false),
            (&["untagged"], &[], &[], true),
            (&["untagged"], &[], &["x"], false),
            (&[], &[], &["never"], false),
            (&["all"], &[], &["never", "debug"], false),
            (&["debug"], &[], &["never", "debug"], true),
            (&["never"], &[], &["never"], true),
        ];
        for (only, skip, task, runs) in cases {
            assert_eq!(
                filter(only, skip).selects(&tags(task)),
                *runs,
                "--tags {only:?} --skip-tags {skip:?} on {task:?}"
            );
        }
    }

    #[test]
    fn starting_at_a_task_drops_what_comes_before_it() {
        let text = "- hosts: a\n  tasks:\n    - name: one\n      file: { path: /1 }\n- hosts: b\n  tasks:\n    - name: two\n      file: { path: /2 }\n    - block:\n        - name: in block\n          file: { path: /b }\n        - name: three\n          file: { path: /3 }\n      always:\n        - name: four\n          file: { path: /4 }\n  handlers:\n    - name: h\n      file: { path: /h }\n";
        let mut playbook = Playbook::parse(text, std::path::Path::new("site.yml")).unwrap();
        playbook.start_at_task("three").unwrap();
        assert_eq!(playbook.plays.len(), 1);
        assert_eq!(playbook.plays[0].hosts, "b");
        let names: Vec<String> = playbook.plays[0]
            .tasks
            .iter()
            .map(crate::playbook::Task::title)
            .collect();
        assert_eq!(names, ["three", "four"]);
        let Node::Block { block, always, .. } = &playbook.plays[0].body[0] else {
            panic!("{:?}", playbook.plays[0].body);
        };
        assert!(matches!(block[..], [Node::Task(0)]));
        assert!(matches!(always[..], [Node::Task(1)]));
        assert_eq!(playbook.plays[0].handlers.len(), 1);
        assert_eq!(
            playbook.start_at_task("five").unwrap_err().to_string(),
            "--start-at-task: no task is named `five`"
        );
    }
}
