//! Validation of the names converge sends to a host, one rule per kind.
//!
//! A name that cannot be valid for its kind is rejected before anything is sent, so a
//! value like `x; touch /tmp/pwned` never reaches a host even though quoting would make
//! it harmless: a clear error beats a confusing one from `useradd` or `systemctl`.

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn invalid(kind: &'static str, value: &str, reason: &'static str) -> InvalidName {
    InvalidName {
        kind,
        value: value.to_owned(),
        reason,
    }
}

/// A user or group name as `useradd`/`groupadd` accept them by default on Debian:
/// starts with a lowercase letter or `_`, then lowercase letters, digits, `_` or `-`,
/// optionally ending in `$`, at most 32 characters.
pub fn account(kind: &'static str, name: &str) -> Result<(), InvalidName> {
    const RULE: &str = "use a lowercase letter or _ first, then lowercase letters, digits, _ or -, at most 32 characters";
    let bytes = name.as_bytes();
    let Some((&first, rest)) = bytes.split_first() else {
        return Err(invalid(kind, name, "it is empty"));
    };
    let rest = rest.strip_suffix(b"$").unwrap_or(rest);
    let valid = bytes.len() <= 32
        && (first.is_ascii_lowercase() || first == b'_')
        && rest
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(invalid(kind, name, RULE))
    }
}

/// A user name.
pub fn user(name: &str) -> Result<(), InvalidName> {
    account("user name", name)
}

/// A group name.
pub fn group(name: &str) -> Result<(), InvalidName> {
    account("group name", name)
}

/// A systemd unit name: `NAME.TYPE` with a known unit type, NAME made of ASCII letters,
/// digits and `:-_.\@` (templates and instances allowed), at most 255 characters.
pub fn unit(name: &str) -> Result<(), InvalidName> {
    const KIND: &str = "unit name";
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "target",
        "timer",
        "path",
        "mount",
        "automount",
        "swap",
        "slice",
        "scope",
        "device",
    ];
    if name.is_empty() || name.len() > 255 {
        return Err(invalid(KIND, name, "it must be 1 to 255 characters long"));
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err(invalid(
            KIND,
            name,
            "it needs a type suffix such as .service or .timer",
        ));
    };
    if !TYPES.contains(&suffix) {
        return Err(invalid(
            KIND,
            name,
            "its type suffix is not a systemd unit type (e.g. .service, .timer)",
        ));
    }
    let valid_stem = !stem.is_empty()
        && !stem.starts_with('-')
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if !valid_stem {
        return Err(invalid(
            KIND,
            name,
            "use only ASCII letters, digits and : - _ . \\ @",
        ));
    }
    // `NAME@INSTANCE.TYPE` or the template `NAME@.TYPE`: systemd refuses an empty NAME
    // and a second `@`.
    if let Some((prefix, instance)) = stem.split_once('@') {
        if prefix.is_empty() {
            return Err(invalid(KIND, name, "it needs a name before the @"));
        }
        if instance.contains('@') {
            return Err(invalid(KIND, name, "it may contain only one @"));
        }
    }
    Ok(())
}

/// A service name as `systemctl` accepts it: a unit name, or a bare name meaning
/// `NAME.service`. Returns the full unit name.
pub fn service(name: &str) -> Result<String, InvalidName> {
    let full = if name.contains('.') {
        name.to_owned()
    } else {
        format!("{name}.service")
    };
    unit(&full).map(|()| full)
}

/// An absolute path: starts with `/`, no NUL, no newline, no `..` component, not `/` itself.
pub fn path(path: &str) -> Result<(), InvalidName> {
    const KIND: &str = "path";
    if !path.starts_with('/') {
        return Err(invalid(KIND, path, "it must be absolute (start with /)"));
    }
    if path.bytes().any(|b| b == 0 || b == b'\n' || b == b'\r') {
        return Err(invalid(
            KIND,
            path,
            "it contains a NUL or newline character",
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(invalid(KIND, path, "it contains a .. component"));
    }
    if path.trim_end_matches('/').is_empty() {
        return Err(invalid(KIND, path, "it is the root directory"));
    }
    Ok(())
}

/// The path of a regular file: an absolute [`path`] whose last component is a name, not
/// `/` or `/.` (which name a directory: the new file would be moved into it).
pub fn file_path(value: &str) -> Result<(), InvalidName> {
    path(value)?;
    if value.ends_with('/') || value.ends_with("/.") {
        return Err(invalid(
            "path",
            value,
            "it ends in / or /., so it names a directory, not a file",
        ));
    }
    Ok(())
}

/// A home directory or login shell for `/etc/passwd`: an absolute [`path`] without `:`,
/// which separates the fields of that file.
pub fn passwd_path(value: &str) -> Result<(), InvalidName> {
    path(value)?;
    if value.contains(':') {
        return Err(invalid(
            "path",
            value,
            "it contains ':', which separates the fields of /etc/passwd",
        ));
    }
    Ok(())
}

/// A file name in `/etc/sudoers.d`. sudo silently skips files whose name contains `.` or
/// ends in `~`, so such a name would install rules that never apply.
pub fn sudoers_file(name: &str) -> Result<(), InvalidName> {
    const KIND: &str = "sudoers file name";
    if name.contains('.') {
        return Err(invalid(
            KIND,
            name,
            "sudo ignores files in /etc/sudoers.d whose name contains '.'",
        ));
    }
    if name.ends_with('~') {
        return Err(invalid(
            KIND,
            name,
            "sudo ignores files in /etc/sudoers.d whose name ends in '~'",
        ));
    }
    let valid = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(invalid(
            KIND,
            name,
            "use only ASCII letters, digits, _ and -",
        ))
    }
}

/// A systemd drop-in file name: a plain file name of ASCII letters, digits and
/// `_ - . @ +`, not starting with `.`. systemd reads only `*.conf` files in a drop-in
/// directory, so `.conf` is appended when missing. Returns the file name.
pub fn dropin(name: &str) -> Result<String, InvalidName> {
    const KIND: &str = "drop-in name";
    let valid = !name.is_empty()
        && name.len() <= 250
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.@+".contains(&b));
    if !valid {
        return Err(invalid(
            KIND,
            name,
            "use a plain file name of ASCII letters, digits, _ - . @ and +, not starting with .",
        ));
    }
    // systemd matches `*.conf` case-sensitively: `x.CONF` would be ignored.
    #[allow(clippy::case_sensitive_file_extension_comparisons)]
    let conf = name.ends_with(".conf");
    Ok(if conf {
        name.to_owned()
    } else {
        format!("{name}.conf")
    })
}

/// A signal name for `systemctl kill -s`: `TSTP`, `SIGTSTP`, `HUP`, or a number.
pub fn signal(name: &str) -> Result<(), InvalidName> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() <= 12
        && (bare
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            || bare.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "signal",
            name,
            "use a signal name such as TSTP, HUP or TERM",
        ))
    }
}

/// A Debian package name: lowercase letters, digits, `+`, `-` and `.`, starting with a
/// letter or digit, at least two characters (Debian Policy 5.6.1).
pub fn package(name: &str) -> Result<(), InvalidName> {
    let valid = name.len() >= 2
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "package name",
            name,
            "use lowercase letters, digits, +, - and ., a letter or digit first",
        ))
    }
}

/// A Debian package version: `[epoch:]upstream[-revision]`, ASCII letters, digits and
/// `.+~-:`, starting with a digit (Debian Policy 5.6.12).
pub fn package_version(version: &str) -> Result<(), InvalidName> {
    let valid = version.len() <= 128
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "package version",
            version,
            "use ASCII letters, digits and .+~-:, a digit first",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_versions() {
        for ok in ["hello", "redis-server", "libstdc++6", "g++", "ruby3.1"] {
            assert_eq!(package(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Hello",
            "-o",
            "x;y",
            "hello=2",
            "hello world",
            ".x",
        ] {
            assert!(package(bad).is_err(), "{bad}");
        }
        for ok in ["2.10-3", "5:7.0.15-1~deb12u1", "1.0+dfsg"] {
            assert_eq!(package_version(ok), Ok(()), "{ok}");
        }
        for bad in ["", "latest", "-1", "1 2", "1;x"] {
            assert!(package_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accounts() {
        for ok in ["deploy", "pi", "_apt", "www-data", "a1", "machine$"] {
            assert_eq!(user(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Deploy",
            "1abc",
            "x; touch /tmp/pwned",
            "a b",
            "a/b",
            "a.b",
            "-x",
            &"a".repeat(33),
        ] {
            assert!(user(bad).is_err(), "{bad}");
        }
        assert_eq!(
            user("x; touch /tmp/pwned").unwrap_err().to_string(),
            "invalid user name \"x; touch /tmp/pwned\": use a lowercase letter or _ first, then lowercase letters, digits, _ or -, at most 32 characters"
        );
    }

    #[test]
    fn units() {
        for ok in [
            "sidekiq.service",
            "getty@tty1.service",
            "a-b_c.timer",
            "sys-kernel.mount",
        ] {
            assert_eq!(unit(ok), Ok(()), "{ok}");
        }
        for bad in [
            "sidekiq",
            "sidekiq.txt",
            ".service",
            "a b.service",
            "x;y.service",
            "../x.service",
            "@.service",
            "@x.service",
            "a@b@c.service",
        ] {
            assert!(unit(bad).is_err(), "{bad}");
        }
        assert_eq!(unit("app@.service"), Ok(()));
        assert_eq!(
            unit("@.service").unwrap_err().to_string(),
            "invalid unit name \"@.service\": it needs a name before the @"
        );
        assert_eq!(
            unit("a@b@c.service").unwrap_err().reason,
            "it may contain only one @"
        );
        assert_eq!(service("sidekiq").unwrap(), "sidekiq.service");
        assert_eq!(service("app.timer").unwrap(), "app.timer");
        assert!(service("side kiq").is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(path("/etc/x"), Ok(()));
        for bad in ["etc/x", "", "/", "//", "/a/../b", "/a\nb"] {
            assert!(path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_paths_name_a_file() {
        assert_eq!(file_path("/etc/default/sidekiq"), Ok(()));
        assert_eq!(file_path("/etc/.hidden"), Ok(()));
        for bad in ["/tmp/x/", "/tmp/.", "/tmp/x/.", "tmp/x", "/"] {
            assert!(file_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            file_path("/tmp/x/").unwrap_err().to_string(),
            "invalid path \"/tmp/x/\": it ends in / or /., so it names a directory, not a file"
        );
    }

    #[test]
    fn passwd_paths_have_no_colon() {
        assert_eq!(passwd_path("/home/deploy"), Ok(()));
        assert_eq!(
            passwd_path("/home/a:b").unwrap_err().to_string(),
            "invalid path \"/home/a:b\": it contains ':', which separates the fields of /etc/passwd"
        );
        assert!(passwd_path("bash").is_err());
    }

    #[test]
    fn sudoers_files() {
        assert_eq!(sudoers_file("sidekiq"), Ok(()));
        assert_eq!(
            sudoers_file("sidekiq.conf").unwrap_err().reason,
            "sudo ignores files in /etc/sudoers.d whose name contains '.'"
        );
        assert!(sudoers_file("sidekiq~").is_err());
        assert!(sudoers_file("a/b").is_err());
        assert!(sudoers_file("a b").is_err());
    }

    #[test]
    fn dropins_are_plain_conf_file_names() {
        assert_eq!(dropin("limits").as_deref(), Ok("limits.conf"));
        assert_eq!(dropin("10-limits.conf").as_deref(), Ok("10-limits.conf"));
        for bad in ["", ".conf", "../x", "a/b", "a b", "x;y", ".hidden"] {
            assert!(dropin(bad).is_err(), "{bad}");
        }
        assert_eq!(
            dropin("a/b").unwrap_err().to_string(),
            "invalid drop-in name \"a/b\": use a plain file name of ASCII letters, digits, _ - . @ and +, not starting with ."
        );
    }

    #[test]
    fn signals() {
        for ok in ["TSTP", "SIGTERM", "9"] {
            assert_eq!(signal(ok), Ok(()), "{ok}");
        }
        for bad in ["", "tstp;x", "TS TP"] {
            assert!(signal(bad).is_err(), "{bad}");
        }
    }
}
