//! Host patterns: which hosts `--limit` and a play's `hosts:` select.

use super::{Inventory, InventoryError, InventoryHost, ALL};

impl Inventory {
    /// All hosts, in inventory order.
    pub fn hosts(&self) -> impl Iterator<Item = &InventoryHost> {
        self.hosts.values()
    }

    /// The host with this inventory name.
    // Kept for callers that look a host up by name even while the binary has none.
    #[allow(dead_code)]
    pub fn host(&self, name: &str) -> Option<&InventoryHost> {
        self.hosts.get(name)
    }

    /// Hosts matching an Ansible host pattern, inventory order.
    ///
    /// Terms are separated by `:` or `,`. A term is `all`, a host or group name, or a glob
    /// with `*` and `?` matched against host and group names. The result is the union of
    /// the plain terms, narrowed by every `&term` and then stripped of every `!term`; a
    /// pattern made only of `&` and `!` terms starts from `all`, and a pattern with no
    /// terms at all matches nothing.
    pub fn select(&self, pattern: &str) -> Vec<&InventoryHost> {
        self.hosts
            .values()
            .zip(self.selection_mask(pattern))
            .filter_map(|(host, selected)| selected.then_some(host))
            .collect()
    }

    /// Applies --limit: the subset matching `pattern`; error when none match.
    pub fn limit(&mut self, pattern: &str) -> Result<(), InventoryError> {
        let selected = self.selection_mask(pattern);
        if !selected.contains(&true) {
            return Err(InventoryError::NoHostsMatched {
                pattern: pattern.to_string(),
            });
        }
        let mut keep = selected.into_iter();
        self.hosts.retain(|_, _| keep.next().unwrap_or(false));
        Ok(())
    }

    /// For each host in inventory order, whether `pattern` selects it.
    fn selection_mask(&self, pattern: &str) -> Vec<bool> {
        let mut union = Vec::new();
        let mut intersections = Vec::new();
        let mut exclusions = Vec::new();
        for term in pattern.split([':', ',']).map(str::trim) {
            let (terms, term) = if let Some(term) = term.strip_prefix('!') {
                (&mut exclusions, term.trim_start())
            } else if let Some(term) = term.strip_prefix('&') {
                (&mut intersections, term.trim_start())
            } else {
                (&mut union, term)
            };
            if !term.is_empty() {
                terms.push(term);
            }
        }
        if union.is_empty() && intersections.is_empty() && exclusions.is_empty() {
            return vec![false; self.hosts.len()];
        }
        if union.is_empty() {
            union.push(ALL);
        }
        self.hosts
            .values()
            .map(|host| {
                union.iter().any(|term| host.matches(term))
                    && intersections.iter().all(|term| host.matches(term))
                    && !exclusions.iter().any(|term| host.matches(term))
            })
            .collect()
    }
}

impl InventoryHost {
    /// Whether one pattern term (without `!`/`&`) names this host or one of its groups.
    fn matches(&self, term: &str) -> bool {
        if term.contains(['*', '?']) {
            crate::glob::matches(term, &self.name)
                || self
                    .groups
                    .iter()
                    .any(|group| crate::glob::matches(term, group))
        } else {
            self.name == term || self.groups.iter().any(|group| group == term)
        }
    }
}
