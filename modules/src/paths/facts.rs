//! Facts about paths: a path's kind and attributes (read without following a link on
//! the way, see [`safe_path`]) and a regular file's bytes.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::fact::{DomainKey, Fact};
use crate::paths::safe_path;
use crate::shell::quote;

/// What kind of thing a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathKind {
    Missing,
    File,
    Directory,
    Symlink,
    Other,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Missing => "missing",
            PathKind::File => "regular file",
            PathKind::Directory => "directory",
            PathKind::Symlink => "symbolic link",
            PathKind::Other => "special file",
        })
    }
}

/// Type and attributes of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathState {
    pub kind: PathKind,
    pub owner: String,
    pub group: String,
    pub mode: u32,
}

impl PathState {
    /// A path that does not exist.
    pub fn missing() -> Self {
        PathState {
            kind: PathKind::Missing,
            owner: String::new(),
            group: String::new(),
            mode: 0,
        }
    }
}

/// What `stat` prints about a path: the name comes last, where its `:`s cannot shift
/// the other fields, and lets [`parse_path`] check the line is about the path it asked for.
pub(crate) const PATH_FORMAT: &str = "%F:%u:%U:%G:%a:%n";

/// The most bytes of one file converge reads as a fact; a larger file is refused
/// rather than read (a user's 20 GB sparse file must not exhaust the controller).
pub const CONTENT_LIMIT: usize = 16 << 20;

/// Parses the lines of the directories on the way to `path` and of `path` itself, and
/// judges the way (see [`safe_path::judge`]).
pub(crate) fn parse_path_with_ancestors(path: &str, output: &str) -> Option<Fact> {
    let ancestors = safe_path::ancestors(path);
    // The path's own line comes last and may hold a newline of its name (paths converge
    // validates never do, but a probe must not misread one).
    let mut rest = output;
    let mut steps = Vec::with_capacity(ancestors.len());
    for ancestor in &ancestors {
        let (line, after) = rest.split_once('\n')?;
        rest = after;
        let (uid, state) = parse_path(ancestor, line)?;
        steps.push(safe_path::Step {
            path: ancestor.clone(),
            kind: state.kind,
            uid,
            owner: state.owner,
        });
    }
    let (_, state) = parse_path(path, rest.strip_suffix('\n').unwrap_or(rest))?;
    Some(match safe_path::judge(path, &steps) {
        safe_path::Way::Clear => Fact::Paths(PathFact::Path(state)),
        safe_path::Way::Missing => Fact::Paths(PathFact::Path(PathState::missing())),
        safe_path::Way::Unsafe(reason) => Fact::Refused(reason),
    })
}

/// One line in [`PATH_FORMAT`]: the owner's uid and the path's state.
pub(crate) fn parse_path(path: &str, line: &str) -> Option<(u32, PathState)> {
    if line == "missing" {
        return Some((0, PathState::missing()));
    }
    // %F never contains ':', nor do uids, user and group names or the mode: the name is
    // the rest, whatever it holds.
    let mut parts = line.splitn(6, ':');
    let kind = match parts.next()? {
        "regular file" | "regular empty file" => PathKind::File,
        "directory" => PathKind::Directory,
        "symbolic link" => PathKind::Symlink,
        _ => PathKind::Other,
    };
    let uid = parts.next()?.parse().ok()?;
    let owner = parts.next()?.to_owned();
    let group = parts.next()?.to_owned();
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    if parts.next()? != path {
        return None;
    }
    Some((
        uid,
        PathState {
            kind,
            owner,
            group,
            mode,
        },
    ))
}

/// Each directory on the way, then the path: the same lines the batch's shared `stat`
/// gives (see `converge_path` in the fact batch).
pub(crate) fn path_probe(path: &str) -> String {
    let mut snippet = String::new();
    for step in safe_path::ancestors(path)
        .iter()
        .map(String::as_str)
        .chain([path])
    {
        let _ = write!(
            snippet,
            "stat -c {f} -- {p} 2>/dev/null || echo missing; ",
            f = quote(PATH_FORMAT),
            p = quote(step)
        );
    }
    snippet
}

/// An `sh` snippet that enters the directory of `path` without following a symbolic
/// link (see [`safe_path`]) and there runs `clause`, an `elif CONDITION; then ...; `
/// given the quoted `./NAME` and the bare name. It prints `otherwise` when the directory
/// is not there or the condition fails, and `unsafe` when the directory entered is not
/// the one asked for (a symbolic link on the way, or a swap meanwhile; see
/// [`unsafe_way`]).
pub(crate) fn probe_in_directory(
    path: &str,
    otherwise: &str,
    clause: impl FnOnce(&str, &str) -> String,
) -> String {
    let (dir, name) = safe_path::split(path);
    let d = quote(&dir);
    format!(
        concat!(
            "if ! cd -P -- {d} 2>/dev/null; then echo {o}; ",
            "elif [ \"$PWD\" != {d} ]; then echo unsafe; ",
            "{clause}else echo {o}; fi"
        ),
        d = d,
        o = otherwise,
        clause = clause(&quote(&format!("./{name}")), &name),
    )
}

/// What a probe built by [`probe_in_directory`] means by `unsafe`.
pub(crate) fn unsafe_way(path: &str) -> Fact {
    Fact::Refused(format!(
        "a directory on the way to {path} is a symbolic link or was replaced while it was read; converge never follows a symbolic link on the way to a path it manages"
    ))
}

/// Reads from inside the file's directory, entered without following a symbolic link,
/// and with `nofollow` for the file itself: whatever a user swaps in meanwhile, the
/// bytes come from that directory's own regular file or from nowhere. One byte past the
/// limit says "larger".
pub(crate) fn content_probe(path: &str) -> String {
    probe_in_directory(path, "absent", |n, name| {
        format!(
            "elif [ -f {n} ] && [ ! -h {n} ]; then echo present; {} | base64; ",
            safe_path::read_nofollow(name, CONTENT_LIMIT + 1)
        )
    })
}

/// Parses [`content_probe`]'s output.
pub(crate) fn parse_content(path: &str, output: &str) -> Option<Fact> {
    let (marker, body) = output.split_once('\n').unwrap_or((output, ""));
    match marker {
        "absent" => Some(Fact::Paths(PathFact::Content(None))),
        "unsafe" => Some(unsafe_way(path)),
        "present" => {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()?;
            if bytes.len() > CONTENT_LIMIT {
                return Some(Fact::Refused(format!(
                    "{path} is larger than {} MiB, the most converge reads of one file",
                    CONTENT_LIMIT >> 20
                )));
            }
            Some(Fact::Paths(PathFact::Content(Some(bytes))))
        }
        _ => None,
    }
}

/// The SHA-256 of `bytes`, in lowercase hex as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// Hashes from inside the file's directory, entered without following a symbolic link,
/// and with `nofollow` for the file itself (as [`content_probe`] reads): only the hash
/// crosses the wire, whatever the file's size.
pub(crate) fn hash_probe(path: &str) -> String {
    probe_in_directory(path, "absent", |n, _| {
        format!(
            "elif [ -f {n} ] && [ ! -h {n} ]; then echo present; dd if={n} iflag=nofollow,nonblock bs=64K status=none | sha256sum; "
        )
    })
}

/// Parses [`hash_probe`]'s output.
pub(crate) fn parse_hash(path: &str, output: &str) -> Option<Fact> {
    let (marker, body) = output.split_once('\n').unwrap_or((output, ""));
    match marker {
        "absent" => Some(Fact::Paths(PathFact::Hash(None))),
        "unsafe" => Some(unsafe_way(path)),
        "present" => {
            let hash = body.split_whitespace().next()?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| Fact::Paths(PathFact::Hash(Some(hash.to_ascii_lowercase()))))
        }
        _ => None,
    }
}

/// Lists what is below a directory, entered without following a symbolic link; `find`
/// never follows one below it. One `KIND NAME` line each, `KIND` as `find`'s `%y`.
pub(crate) fn listing_probe(path: &str) -> String {
    let dir = safe_path::normalize(path);
    let d = quote(&dir);
    format!(
        concat!(
            "if ! cd -P -- {d} 2>/dev/null; then echo absent; ",
            "elif [ \"$PWD\" != {d} ]; then echo unsafe; ",
            "else echo present; find . -mindepth 1 -printf '%y %P\\n'; fi"
        ),
        d = d
    )
}

/// Parses [`listing_probe`]'s output. A name holding a newline is cut at it, and so
/// never matches a name of the source tree: such an entry is left alone.
pub(crate) fn parse_listing(path: &str, output: &str) -> Option<Fact> {
    let mut lines = output.lines();
    match lines.next()? {
        "absent" => Some(Fact::Paths(PathFact::Listing(None))),
        "unsafe" => Some(unsafe_way(&format!("{path}/"))),
        "present" => {
            let mut entries = Vec::new();
            for line in lines {
                let Some((kind, name)) = line.split_once(' ') else {
                    continue;
                };
                let kind = match kind {
                    "f" => PathKind::File,
                    "d" => PathKind::Directory,
                    "l" => PathKind::Symlink,
                    _ => PathKind::Other,
                };
                entries.push((name.to_owned(), kind));
            }
            Some(Fact::Paths(PathFact::Listing(Some(entries))))
        }
        _ => None,
    }
}

/// The facts about paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PathKey {
    /// Type, owner, group and mode of a path (not following symlinks).
    Path(String),
    /// Bytes of a regular file.
    Content(String),
    /// SHA-256 of a regular file's bytes (the file itself never crosses the wire).
    Hash(String),
    /// What is below a directory, each name relative to it.
    Listing(String),
}

/// The values of [`PathKey`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum PathFact {
    Path(PathState),
    /// `None` when the path is not a regular file.
    Content(Option<Vec<u8>>),
    /// Lowercase hex; `None` when the path is not a regular file.
    Hash(Option<String>),
    /// Relative names and kinds; `None` when the path is not a directory.
    Listing(Option<Vec<(String, PathKind)>>),
}

impl fmt::Display for PathKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathKey::Path(path) => write!(f, "path {path}"),
            PathKey::Content(path) => write!(f, "content of {path}"),
            PathKey::Hash(path) => write!(f, "hash of {path}"),
            PathKey::Listing(path) => write!(f, "listing of {path}"),
        }
    }
}

impl DomainKey for PathKey {
    fn probe(&self) -> String {
        match self {
            PathKey::Path(path) => path_probe(path),
            PathKey::Content(path) => content_probe(path),
            PathKey::Hash(path) => hash_probe(path),
            PathKey::Listing(path) => listing_probe(path),
        }
    }

    fn parse(&self, output: &str) -> Option<Fact> {
        match self {
            PathKey::Path(path) => parse_path_with_ancestors(path, output),
            PathKey::Content(path) => parse_content(path, output),
            PathKey::Hash(path) => parse_hash(path, output),
            PathKey::Listing(path) => parse_listing(path, output),
        }
    }

    fn path(&self) -> Option<&str> {
        match self {
            PathKey::Path(path)
            | PathKey::Content(path)
            | PathKey::Hash(path)
            | PathKey::Listing(path) => Some(path),
        }
    }

    fn output_is_secret(&self) -> bool {
        matches!(self, PathKey::Content(_))
    }
}
