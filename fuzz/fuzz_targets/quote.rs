//! Fuzz target for `converge_modules::shell::quote` and `join`, the one place where a
//! value becomes part of a remote command line.
//!
//! Property: the input, cut into words at NUL bytes (no shell word can hold a NUL),
//! is joined into a command line; read back under POSIX shell rules, that line must give
//! exactly the same words. The reader below accepts only what is inert to `sh`:
//! characters that are never special, single-quoted strings and backslash escapes,
//! with words separated by single spaces. Anything else that `quote` let through
//! (an unquoted `$`, `;`, newline, glob...) makes it fail.
//!
//! With `CONVERGE_FUZZ_SH=1` each input is also run through a real `sh -c 'printf ...'`,
//! which is slower but checks the real shell instead of the reader.

#![no_main]

use std::process::Command;

use converge_modules::shell::{join, quote};
use libfuzzer_sys::fuzz_target;

/// Characters `sh` gives no meaning to, outside quotes, anywhere in an argument.
fn inert(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || "@%+=:,./_-".contains(ch)
}

/// The words of `line` as `sh` would read them, if `line` holds only inert
/// characters, single-quoted strings, backslash escapes and single spaces between
/// words; `None` otherwise.
fn words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut started = false;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' if started => {
                words.push(std::mem::take(&mut word));
                started = false;
            }
            '\'' => {
                started = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        inner => word.push(inner),
                    }
                }
            }
            '\\' => {
                started = true;
                match chars.next()? {
                    // A line continuation: removed, not part of the word.
                    '\n' => {}
                    escaped => word.push(escaped),
                }
            }
            ch if inert(ch) => {
                started = true;
                word.push(ch);
            }
            _ => return None,
        }
    }
    if started {
        words.push(word);
    } else if !line.is_empty() {
        // A trailing space, or two in a row: join never writes those.
        return None;
    }
    Some(words)
}

/// What a real `sh` prints for `printf %s QUOTED`.
fn through_sh(value: &str) -> Vec<u8> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s {}", quote(value)))
        .output()
        .expect("run sh");
    assert!(output.status.success(), "sh failed for {value:?}");
    output.stdout
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let argv: Vec<&str> = text.split('\0').collect();
    for value in &argv {
        let quoted = quote(value);
        assert_eq!(
            words(&quoted).as_deref(),
            Some(&[(*value).to_owned()][..]),
            "quote({value:?}) = {quoted:?} is not one word holding the value"
        );
    }
    let line = join(&argv);
    let read = words(&line)
        .unwrap_or_else(|| panic!("join gave {line:?}, which sh would not read as plain words"));
    assert_eq!(read, argv, "join({argv:?}) = {line:?}");
    if std::env::var_os("CONVERGE_FUZZ_SH").is_some() {
        for value in &argv {
            assert_eq!(through_sh(value), value.as_bytes(), "{value:?}");
        }
    }
});
