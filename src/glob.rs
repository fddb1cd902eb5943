//! Shell-style wildcards, as inventory patterns (`web*`) and `ssh_config` `Host` lines
//! use them: `*` matches any run of characters, `?` exactly one.
//!
//! Hand-written on purpose: these patterns match names, not files, and have exactly
//! OpenSSH's `match_pattern` semantics (no `[...]` classes, no escapes, `/` is an ordinary
//! character). The `glob` crate's `Pattern` and `globset` would both read `[` as a class,
//! and `globset` compiles every pattern to a regex, where this is one short loop.

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and how much text it has swallowed so far; on a mismatch
    // it swallows one more character instead.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn wildcards() {
        assert!(matches("web*", "web01"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(matches("*.example.com", "db.example.com"));
        assert!(!matches("web*", "db01"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
    }
}
