//! Facts about accounts: a user as `getent` and `id` see it, a group as `getent` does.

use std::fmt;

use serde::Serialize;

use crate::fact::{DomainKey, Fact};
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
        return Some(Fact::Accounts(AccountFact::User(None)));
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
    Some(Fact::Accounts(AccountFact::User(Some(UserInfo {
        uid: Some(fields[2].parse().ok()?),
        home: fields[5].to_owned(),
        shell: fields[6].to_owned(),
        primary_group,
        groups,
    }))))
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
        return Some(Fact::Accounts(AccountFact::Group(None)));
    }
    let gid = line.split(':').nth(2)?.parse().ok()?;
    Some(Fact::Accounts(AccountFact::Group(Some(GroupInfo {
        gid: Some(gid),
    }))))
}

/// The facts about accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AccountKey {
    /// A user account.
    User(String),
    /// A group.
    Group(String),
}

/// The values of [`AccountKey`]s: `None` when the account does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AccountFact {
    User(Option<UserInfo>),
    Group(Option<GroupInfo>),
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountKey::User(name) => write!(f, "user {name}"),
            AccountKey::Group(name) => write!(f, "group {name}"),
        }
    }
}

impl DomainKey for AccountKey {
    fn probe(&self) -> String {
        match self {
            AccountKey::User(name) => user_probe(name),
            AccountKey::Group(name) => group_probe(name),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            AccountKey::User(_) => parse_user(output),
            AccountKey::Group(_) => parse_group(output),
        }
    }
}
