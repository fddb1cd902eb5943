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

impl crate::FactStore {
    /// The password hash of user `name` (`None`: no shadow entry).
    pub fn password(&self, name: &str) -> Result<Option<&str>, crate::FactUnavailable> {
        let key = crate::FactKey::Accounts(AccountKey::Password(name.to_owned()));
        match self.fact(&key)? {
            Fact::Accounts(AccountFact::Password(hash)) => Ok(hash.as_deref()),
            _ => Err(crate::FactUnavailable::NotRead {
                key: key.to_string(),
            }),
        }
    }
}

/// The hash field of a `getent shadow` line; `None` without a line.
pub(crate) fn parse_password(output: &str) -> Option<Fact> {
    let line = output.trim_end_matches('\n');
    let hash = if line.is_empty() {
        None
    } else {
        Some(line.split(':').nth(1)?.to_owned())
    };
    Some(Fact::Accounts(AccountFact::Password(hash)))
}

/// The facts about accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum AccountKey {
    /// A user account.
    User(String),
    /// A group.
    Group(String),
    /// A user's password hash, from the shadow database: a secret.
    Password(String),
}

/// The values of [`AccountKey`]s: `None` when the account does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AccountFact {
    User(Option<UserInfo>),
    Group(Option<GroupInfo>),
    /// `None` when the user has no shadow entry (or does not exist).
    Password(Option<String>),
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountKey::User(name) => write!(f, "user {name}"),
            AccountKey::Group(name) => write!(f, "group {name}"),
            AccountKey::Password(name) => write!(f, "password of user {name}"),
        }
    }
}

impl DomainKey for AccountKey {
    fn probe(&self) -> String {
        match self {
            AccountKey::User(name) => user_probe(name),
            AccountKey::Group(name) => group_probe(name),
            AccountKey::Password(name) => format!("getent shadow {} || true", quote(name)),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            AccountKey::User(_) => parse_user(output),
            AccountKey::Group(_) => parse_group(output),
            AccountKey::Password(_) => parse_password(output),
        }
    }

    fn output_is_secret(&self) -> bool {
        matches!(self, AccountKey::Password(_))
    }
}
