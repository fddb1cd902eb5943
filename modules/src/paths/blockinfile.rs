//! `blockinfile`: a block of lines between two marker lines, in a file converge does
//! not own, present or absent.
//!
//! The markers are `marker` with `{mark}` replaced by `BEGIN` and `END`. When the file
//! has both, everything from the last of one to the last of the other is replaced by
//! the block (or removed, with `state: absent` or an empty block); otherwise the block
//! is inserted after the last line `insert_after` matches (or before the last
//! `insert_before` matches, or at the file's start or end). The rest of the file is
//! kept byte for byte (see [`lines`]).

use serde::Deserialize;

use crate::fact::{FactKey, FactStore};
use crate::paths::lines::{self, Anchor, Place, Target};
use crate::{Mode, Module, ParamError, Plan, PlanError, Presence};

/// The marker lines' default, `{mark}` standing for `BEGIN` and `END`.
pub const DEFAULT_MARKER: &str = "# {mark} MANAGED BY CONVERGE";

fn default_marker() -> String {
    DEFAULT_MARKER.to_owned()
}

/// Parameters of the `blockinfile` module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockInFile {
    pub path: String,
    #[serde(default)]
    pub block: String,
    #[serde(default = "default_marker")]
    pub marker: String,
    #[serde(default)]
    pub state: Presence,
    #[serde(default)]
    pub insert_after: Option<Anchor>,
    #[serde(default)]
    pub insert_before: Option<Anchor>,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub mode: Option<Mode>,
}

impl BlockInFile {
    fn target(&self) -> Target<'_> {
        Target {
            path: &self.path,
            state: self.state,
            create: self.create,
            owner: self.owner.as_ref(),
            group: self.group.as_ref(),
            mode: self.mode,
        }
    }

    fn marker(&self, mark: &str) -> Vec<u8> {
        self.marker.replace("{mark}", mark).into_bytes()
    }

    /// `content` with the block in place, or without it.
    fn edit(&self, content: &[u8]) -> Vec<u8> {
        let mut lines = lines::split(content);
        let newline = lines::newline(&lines);
        let (begin, end) = (self.marker("BEGIN"), self.marker("END"));
        let last = |marker: &[u8]| lines.iter().rposition(|line| lines::text(line) == marker);
        let index = match (last(&begin), last(&end)) {
            (Some(first), Some(second)) => {
                let (from, to) = (first.min(second), first.max(second));
                // The old block's end, when it closed the file without a newline, is
                // replaced by one that has it: the line before is ended below.
                lines.drain(from..=to);
                from
            }
            _ if self.state == Presence::Absent => return content.to_vec(),
            _ => Place::of(self.insert_after.as_ref(), self.insert_before.as_ref()).index(&lines),
        };
        if self.state == Presence::Present && !self.block.is_empty() {
            let body = self.block.strip_suffix('\n').unwrap_or(&self.block);
            let block = std::iter::once(begin.as_slice())
                .chain(body.split('\n').map(|line| lines::text(line.as_bytes())))
                .chain([end.as_slice()])
                .map(|line| lines::ended(line, newline))
                .collect();
            lines::insert(&mut lines, index, block);
        }
        lines.concat()
    }
}

impl Module for BlockInFile {
    const NAME: &'static str = "blockinfile";

    fn validate(&self) -> Result<(), ParamError> {
        self.target()
            .validate(self.insert_after.as_ref(), self.insert_before.as_ref())?;
        lines::validate_one_line("marker", &self.marker, "")?;
        if !self.marker.contains("{mark}") {
            return Err(ParamError::Invalid {
                param: "marker",
                reason: "must contain {mark}, which becomes BEGIN and END".to_owned(),
            });
        }
        if self.state == Presence::Absent && !self.block.is_empty() {
            return Err(ParamError::Invalid {
                param: "state",
                reason: "is absent, so block makes no sense".to_owned(),
            });
        }
        Ok(())
    }

    fn facts(&self, _known: &FactStore) -> Vec<FactKey> {
        self.target().facts()
    }

    fn plan(&self, facts: &FactStore) -> Result<Plan, PlanError> {
        self.target().plan(facts, |content| self.edit(content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Change;
    use crate::paths::lines::tests::{edited, edited_text, facts, refused};
    use crate::paths::PathChange;

    fn task(json: &str) -> BlockInFile {
        lines::tests::task(json)
    }

    const MATCH: &str = r#""block": "Match User deploy\n  PasswordAuthentication no\n""#;
    const BLOCK: &str = "# BEGIN MANAGED BY CONVERGE\nMatch User deploy\n  PasswordAuthentication no\n# END MANAGED BY CONVERGE\n";

    #[test]
    fn a_block_is_added_at_the_end_then_left_alone() {
        let task = task(MATCH);
        assert_eq!(
            edited_text(&task, "Port 22\n").unwrap(),
            format!("Port 22\n{BLOCK}")
        );
        assert_eq!(edited_text(&task, &format!("Port 22\n{BLOCK}")), None);
    }

    #[test]
    fn a_changed_block_is_replaced_where_it_is() {
        let task = task(r#""block": "Match User deploy\n  PasswordAuthentication yes""#);
        let old = format!("Port 22\n{BLOCK}UsePAM yes\n");
        assert_eq!(
            edited_text(&task, &old).unwrap(),
            old.replace("PasswordAuthentication no", "PasswordAuthentication yes")
        );
    }

    #[test]
    fn insert_before_after_and_bof() {
        let before = task(&format!(r#"{MATCH}, "insert_before": "^UsePAM""#));
        assert_eq!(
            edited_text(&before, "Port 22\nUsePAM yes\n").unwrap(),
            format!("Port 22\n{BLOCK}UsePAM yes\n")
        );
        let after = task(&format!(r#"{MATCH}, "insert_after": "^Port""#));
        assert_eq!(
            edited_text(&after, "Port 22\nUsePAM yes\n").unwrap(),
            format!("Port 22\n{BLOCK}UsePAM yes\n")
        );
        let bof = task(&format!(r#"{MATCH}, "insert_before": "BOF""#));
        assert_eq!(
            edited_text(&bof, "Port 22\n").unwrap(),
            format!("{BLOCK}Port 22\n")
        );
    }

    #[test]
    fn absent_and_an_empty_block_remove_the_block() {
        let absent = task(r#""state": "absent""#);
        let with = format!("Port 22\n{BLOCK}UsePAM yes\n");
        assert_eq!(
            edited_text(&absent, &with).unwrap(),
            "Port 22\nUsePAM yes\n"
        );
        assert_eq!(edited_text(&absent, "Port 22\n"), None);
        assert!(absent.plan(&facts(None)).unwrap().changes.is_empty());
        let empty = task(r#""block": """#);
        assert_eq!(edited_text(&empty, &with).unwrap(), "Port 22\nUsePAM yes\n");
    }

    #[test]
    fn a_custom_marker() {
        let task = task(r#""block": "a", "marker": "; {mark} app""#);
        assert_eq!(
            edited_text(&task, "x\n").unwrap(),
            "x\n; BEGIN app\na\n; END app\n"
        );
    }

    #[test]
    fn crlf_files_and_a_missing_final_newline() {
        let task = task(r#""block": "a\nb""#);
        assert_eq!(
            edited_text(&task, "x\r\ny").unwrap(),
            "x\r\ny\r\n# BEGIN MANAGED BY CONVERGE\r\na\r\nb\r\n# END MANAGED BY CONVERGE\r\n"
        );
        let old = "x\n# BEGIN MANAGED BY CONVERGE\nold\n# END MANAGED BY CONVERGE";
        assert_eq!(
            edited_text(&task, old).unwrap(),
            "x\n# BEGIN MANAGED BY CONVERGE\na\nb\n# END MANAGED BY CONVERGE\n"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_kept() {
        let task = task(r#""block": "a""#);
        assert_eq!(
            edited(&task, b"\xff\n").unwrap(),
            b"\xff\n# BEGIN MANAGED BY CONVERGE\na\n# END MANAGED BY CONVERGE\n"
        );
    }

    #[test]
    fn a_missing_file_is_created_only_with_create() {
        let task = task(r#""block": "a""#);
        assert!(matches!(
            task.plan(&facts(None)),
            Err(PlanError::NoFile { .. })
        ));
        let create = self::task(r#""block": "a", "create": true"#);
        let plan = create.plan(&facts(None)).unwrap();
        let [Change::Paths(PathChange::WriteFile(write))] = plan.changes.as_slice() else {
            panic!("{plan:?}")
        };
        assert_eq!(
            write.content,
            b"# BEGIN MANAGED BY CONVERGE\na\n# END MANAGED BY CONVERGE\n"
        );
        assert_eq!(write.mode, 0o644);
    }

    #[test]
    fn parameters_are_checked() {
        let check = refused::<BlockInFile>;
        assert_eq!(
            check(r##""marker": "# managed""##),
            "`marker` must contain {mark}, which becomes BEGIN and END"
        );
        assert_eq!(
            check(r#""state": "absent", "block": "a""#),
            "`state` is absent, so block makes no sense"
        );
        assert_eq!(
            check(r#""block": "a", "insert_after": "EOF", "insert_before": "BOF""#),
            "give at most one of insert_after, insert_before"
        );
    }
}
