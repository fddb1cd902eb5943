//! Facts about accounts: a user as `getent` and `id` see it, a group as `getent` does.

use serde::Serialize;

use crate::fact::Fact;
use crate::shell::quote;

/// A user account as `getent` and `id` see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    /// `None` while the account exists only in a check-mode prediction.
    pub uid: Option<u32>,
    pub home: String,
    pub shell: String,
    pub primary_group: String,
    /// Supplementary groups, sorted.
    pub groups: Vec<String>,
}

/// A group as `getent` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupInfo {
    /// `None` while the group exists only in a check-mode prediction.
    pub gid: Option<u32>,
}

pub(crate) fn parse_user(output: &str) -> Option<Fact> {
    let mut lines = output.lines();
    let passwd = lines.next()?;
    if passwd.is_empty() {
        return Some(Fact::User(None));
    }
    let fields: Vec<&str> = passwd.split(':').collect();
    if fields.len() != 7 {
        return None;
    }
    // Empty when the account vanished between `getent` and `id`.
    let mut id_groups = lines.next()?.split_whitespace();
    let primary_group = id_groups.next().unwrap_or_default().to_owned();
    let mut groups: Vec<String> = id_groups
        .filter(|group| *group != primary_group)
        .map(str::to_owned)
        .collect();
    groups.sort();
    groups.dedup();
    Some(Fact::User(Some(UserInfo {
        uid: Some(fields[2].parse().ok()?),
        home: fields[5].to_owned(),
        shell: fields[6].to_owned(),
        primary_group,
        groups,
    })))
}

/// `id -Gn` prints the primary group first, the same word `id -gn` prints, then the
/// others: one `id` gives both.
pub(crate) fn user_probe(name: &str) -> String {
    format!(
        "printf '%s\\n' \"$(getent passwd {n})\" \"$(id -Gn {n} 2>/dev/null)\"",
        n = quote(name)
    )
}

pub(crate) fn group_probe(name: &str) -> String {
    format!("getent group {} || true", quote(name))
}

pub(crate) fn parse_group(output: &str) -> Option<Fact> {
    let line = output.trim_end();
    if line.is_empty() {
        return Some(Fact::Group(None));
    }
    let gid = line.split(':').nth(2)?.parse().ok()?;
    Some(Fact::Group(Some(GroupInfo { gid: Some(gid) })))
}
