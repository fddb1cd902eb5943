//! Quoting for POSIX shells: the one place where a value becomes part of a command line.
//!
//! Every argument converge sends to a remote shell goes through [`quote`]. The result is
//! a single shell word that the shell turns back into exactly the original string,
//! whatever bytes it holds (quotes, newlines, `$`, `;`, globs, leading dashes).

use std::borrow::Cow;

/// Quotes `value` as one POSIX shell word.
///
/// Values made only of characters that are never special to a shell are left as they
/// are, so command lines stay readable in `-v` output; everything else is wrapped in
/// single quotes, with each embedded `'` written as `'\''`.
pub fn quote(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        return Cow::Borrowed(value);
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('\'');
    for ch in value.chars() {
        if ch == '\'' {
            quoted.push_str("'\\''");
        } else {
            quoted.push(ch);
        }
    }
    quoted.push('\'');
    Cow::Owned(quoted)
}

/// Joins an argv into one command line, quoting every word.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    let mut line = String::new();
    for (index, word) in argv.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&quote(word.as_ref()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::process::Command;

    #[test]
    fn plain_words_stay_readable() {
        assert_eq!(quote("systemctl"), "systemctl");
        assert_eq!(quote("/etc/sudoers.d/sidekiq"), "/etc/sudoers.d/sidekiq");
        assert_eq!(quote("deploy@"), "deploy@");
    }

    #[test]
    fn special_words_are_single_quoted() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("x; touch /tmp/pwned"), "'x; touch /tmp/pwned'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn join_quotes_each_word() {
        assert_eq!(
            join(&["sh", "-c", "echo $1", "converge", "a'b"]),
            "sh -c 'echo $1' converge 'a'\\''b'"
        );
    }

    fn round_trip(value: &str) -> String {
        let line = format!("printf %s {}", quote(value));
        let output = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(output.status.success(), "{line}");
        String::from_utf8(output.stdout).unwrap()
    }

    #[test]
    fn hostile_values_round_trip_through_sh() {
        for value in [
            "", "'", "''", "\\", "\n", "a\nb", "$HOME", "`id`", "-n", "*", "!x", "\t'\"$",
        ] {
            assert_eq!(round_trip(value), value);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn any_string_round_trips_through_sh(value in "[^\u{0}]{0,40}") {
            prop_assert_eq!(round_trip(&value), value);
        }
    }
}
