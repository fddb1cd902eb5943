//! Private key files as `ssh` treats them: which ones are encrypted, what public key a
//! file pair holds (to find the same key in ssh-agent), and passphrases asked on the
//! terminal.
//!
//! Guarantees:
//! - A passphrase is asked on `/dev/tty` without echo, at most once per key file per run
//!   however many hosts use the key (hosts connecting in parallel wait for the one
//!   prompt), and again only after the key refused it.
//! - Without a terminal nothing is asked, and the reason names the key and the remedies.
//! - Passphrases stay in this process's memory only; they are never written or logged.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Private key files are small; anything larger is not one.
const MAX_KEY_FILE: u64 = 1024 * 1024;
/// The magic at the start of a decoded `OPENSSH PRIVATE KEY` block.
const OPENSSH_MAGIC: &[u8] = b"openssh-key-v1\0";

/// Passphrases given so far in this run, by key file.
static PASSPHRASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

/// Whether a private key file needs a passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Plain,
    Encrypted,
}

/// Reads the head of `path` and tells whether the key in it is encrypted. A format this
/// does not know is reported as plain and left to libssh2 to judge.
pub fn protection(path: &Path) -> io::Result<Protection> {
    let size = fs::metadata(path)?.len();
    if size > MAX_KEY_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too large to be a private key file",
        ));
    }
    let text = String::from_utf8_lossy(&fs::read(path)?).into_owned();
    Ok(protection_of(&text))
}

/// [`protection`] from the file's text.
fn protection_of(text: &str) -> Protection {
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Protection::Encrypted;
    }
    let Some(body) = pem_body(text, "OPENSSH PRIVATE KEY") else {
        return Protection::Plain;
    };
    let Some(bytes) = base64_decode(&body) else {
        return Protection::Plain;
    };
    // openssh-key-v1: magic, then the cipher name as an SSH string; "none" is plain.
    let Some(rest) = bytes.strip_prefix(OPENSSH_MAGIC) else {
        return Protection::Plain;
    };
    match ssh_string(rest) {
        Some(cipher) if cipher != b"none" => Protection::Encrypted,
        _ => Protection::Plain,
    }
}

/// The base64 text between `-----BEGIN LABEL-----` and `-----END LABEL-----`.
fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

/// The first SSH wire-format string (u32 length, bytes) of `data`.
fn ssh_string(data: &[u8]) -> Option<&[u8]> {
    let length = u32::from_be_bytes(data.get(..4)?.try_into().ok()?);
    let end = 4usize.checked_add(usize::try_from(length).ok()?)?;
    data.get(4..end)
}

/// The public key blob of the key in `path`, from `path.pub`, when that file exists and
/// holds one; used to recognize the same key among ssh-agent's.
pub fn public_blob(path: &Path) -> Option<Vec<u8>> {
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    let text = fs::read_to_string(PathBuf::from(public)).ok()?;
    let encoded = text.split_whitespace().nth(1)?;
    base64_decode(encoded)
}

/// Standard base64 (RFC 4648), padding optional; `None` on any other character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group: u32 = 0;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        group = group << 6 | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((group >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// Why no passphrase could be had for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoPassphrase {
    /// There is no terminal to ask on.
    NoTerminal,
    /// The terminal could not be read (or the prompt was cancelled).
    Prompt(String),
}

impl NoPassphrase {
    /// The reason, naming the key and what to do.
    pub fn explain(&self, key: &Path) -> String {
        match self {
            NoPassphrase::NoTerminal => format!(
                "key {} is encrypted; load it into ssh-agent (`ssh-add {}`) or run converge \
                 on a terminal to be asked for its passphrase",
                key.display(),
                key.display()
            ),
            NoPassphrase::Prompt(reason) => format!(
                "key {} is encrypted and its passphrase could not be read: {reason}",
                key.display()
            ),
        }
    }
}

/// The passphrase for `key`: the one given earlier in this run, unless that is
/// `rejected` (the key refused it), else asked on the terminal. Hosts that share a key
/// and were all refused the same wrong passphrase get the one typed next, asked once.
pub fn passphrase(key: &Path, rejected: Option<&str>) -> Result<String, NoPassphrase> {
    let mut cache = PASSPHRASES.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(known) = cache.get(key) {
        if rejected != Some(known.as_str()) {
            return Ok(known.clone());
        }
    }
    let retry = rejected.is_some();
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
    {
        return Err(NoPassphrase::NoTerminal);
    }
    let prompt = if retry {
        format!(
            "Wrong passphrase. Enter passphrase for key '{}': ",
            key.display()
        )
    } else {
        format!("Enter passphrase for key '{}': ", key.display())
    };
    let _terminal = crate::terminal::claim();
    let given =
        rpassword::prompt_password(prompt).map_err(|e| NoPassphrase::Prompt(e.to_string()))?;
    cache.insert(key.to_path_buf(), given.clone());
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -t ed25519 -N ''` and `-N secret`, trimmed to their first lines: only
    // the header up to the cipher name matters here.
    const PLAIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
        b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n\
        -----END OPENSSH PRIVATE KEY-----\n";
    const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\n\
        b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAkfix15D\n\
        -----END OPENSSH PRIVATE KEY-----\n";

    #[test]
    fn openssh_format_encryption_is_read_from_the_cipher_name() {
        assert_eq!(protection_of(PLAIN), Protection::Plain);
        assert_eq!(protection_of(ENCRYPTED), Protection::Encrypted);
    }

    #[test]
    fn pem_formats() {
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(protection_of(legacy), Protection::Encrypted);
        let pkcs8 =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert_eq!(protection_of(pkcs8), Protection::Encrypted);
        let plain = "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(protection_of(plain), Protection::Plain);
        assert_eq!(protection_of("garbage"), Protection::Plain);
    }

    #[test]
    fn base64_round_trips_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(base64_decode("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn public_blob_reads_the_pub_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        fs::write(dir.path().join("id.pub"), "ssh-ed25519 Zm9vYmFy me@host\n").unwrap();
        assert_eq!(public_blob(&key).unwrap(), b"foobar");
        assert_eq!(public_blob(&dir.path().join("other")), None);
    }

    #[test]
    fn the_no_terminal_reason_names_the_key_and_the_remedies() {
        assert_eq!(
            NoPassphrase::NoTerminal.explain(Path::new("/k/id")),
            "key /k/id is encrypted; load it into ssh-agent (`ssh-add /k/id`) or run \
             converge on a terminal to be asked for its passphrase"
        );
    }
}
