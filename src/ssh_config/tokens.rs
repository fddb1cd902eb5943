//! `%` tokens (`%h`, `%p`, `%r`, `%u`, `%d`, `%%` ...) and their expansion.

use super::Local;

/// Why a `%` token cannot be expanded.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a lone % at the end (write %% for a percent sign)")]
    Lone,
    #[error(
        "the token %{token} is not supported here (supported: {})",
        shown(allowed)
    )]
    NotAllowed { token: char, allowed: &'static str },
    #[error("%d needs $HOME, which is not set")]
    NoHome,
    #[error("the token %{token} is not supported")]
    Unknown { token: char },
}

/// `allowed` token letters as they are written, `%h %d`.
fn shown(allowed: &str) -> String {
    allowed
        .chars()
        .map(|t| format!("%{t}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `%` tokens expand to for one host.
pub(super) struct Tokens<'a> {
    pub(super) original: &'a str,
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) user: &'a str,
    pub(super) local: &'a Local,
}

impl Tokens<'_> {
    /// Expands the `%` tokens of `text`; `allowed` lists the token letters this setting
    /// accepts (as in the TOKENS section of `ssh_config(5)`).
    pub(super) fn expand(&self, text: &str, allowed: &'static str) -> Result<String, TokenError> {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(token) = chars.next() else {
                return Err(TokenError::Lone);
            };
            if !allowed.contains(token) {
                return Err(TokenError::NotAllowed { token, allowed });
            }
            match token {
                '%' => out.push('%'),
                'h' => out.push_str(self.host),
                'n' => out.push_str(self.original),
                'p' => out.push_str(&self.port.to_string()),
                'r' => out.push_str(self.user),
                'u' => out.push_str(&self.local.user),
                'd' => match &self.local.home {
                    Some(home) => out.push_str(&home.to_string_lossy()),
                    None => return Err(TokenError::NoHome),
                },
                _ => return Err(TokenError::Unknown { token }),
            }
        }
        Ok(out)
    }
}
