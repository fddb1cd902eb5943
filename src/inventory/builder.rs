//! The group graph: groups and hosts as written, resolved into an [`Inventory`] at the
//! end (memberships through `children`, `ungrouped`, cycles, variable precedence).

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};
use serde_json::Value;

use super::tagged::Level;
use super::{Inventory, InventoryHost, Vars, ALL, SETTINGS, UNGROUPED};

#[derive(Debug, Default)]
pub(super) struct GroupDef {
    vars: Level,
    children: IndexSet<String>,
    parents: IndexSet<String>,
}

#[derive(Debug, Default)]
pub(super) struct HostDef {
    vars: Level,
    /// Groups that list the host directly.
    groups: IndexSet<String>,
}

#[derive(Debug)]
pub(super) struct Builder {
    pub(super) groups: IndexMap<String, GroupDef>,
    pub(super) hosts: IndexMap<String, HostDef>,
    /// Variables from `group_vars/` and `host_vars/`, by group and host name.
    pub(super) dir_group_vars: IndexMap<String, Level>,
    pub(super) dir_host_vars: IndexMap<String, Level>,
}

impl Builder {
    pub(super) fn new() -> Self {
        let mut builder = Builder {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
            dir_group_vars: IndexMap::new(),
            dir_host_vars: IndexMap::new(),
        };
        builder.add_child(ALL, UNGROUPED);
        builder
    }

    pub(super) fn group(&mut self, name: &str) -> &mut GroupDef {
        self.groups.entry(name.to_string()).or_default()
    }

    pub(super) fn add_child(&mut self, parent: &str, child: &str) {
        self.group(parent).children.insert(child.to_string());
        self.group(child).parents.insert(parent.to_string());
    }

    pub(super) fn add_group_vars(&mut self, group: &str, vars: &Level) {
        self.group(group).vars.merge(vars);
    }

    pub(super) fn add_host(&mut self, group: &str, name: &str, vars: &Level) {
        self.group(group);
        let host = self.hosts.entry(name.to_string()).or_default();
        host.groups.insert(group.to_string());
        host.vars.merge(vars);
    }

    /// Resolves group depths, memberships and variables; fails with the groups of a
    /// `children` cycle, in parent-to-child order with the first repeated at the end.
    pub(super) fn finish(mut self) -> Result<Inventory, Vec<String>> {
        let orphans: Vec<String> = self
            .groups
            .iter()
            .filter(|(name, group)| name.as_str() != ALL && group.parents.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        for orphan in orphans {
            self.add_child(ALL, &orphan);
        }
        let depths = self.depths()?;
        let Builder {
            groups,
            hosts,
            dir_group_vars,
            dir_host_vars,
        } = self;

        let mut resolved = IndexMap::with_capacity(hosts.len());
        for (name, mut host) in hosts {
            if host
                .groups
                .iter()
                .any(|group| group != ALL && group != UNGROUPED)
            {
                host.groups.shift_remove(UNGROUPED);
            } else {
                host.groups.insert(UNGROUPED.to_string());
            }
            let mut member: IndexSet<usize> = host
                .groups
                .iter()
                .filter_map(|group| groups.get_index_of(group))
                .collect();
            let mut next = 0;
            while let Some(&index) = member.get_index(next) {
                next += 1;
                let parents = groups.get_index(index).map(|(_, group)| &group.parents);
                for parent in parents.into_iter().flatten() {
                    if let Some(parent) = groups.get_index_of(parent) {
                        member.insert(parent);
                    }
                }
            }
            let mut member: Vec<(usize, &str)> = member
                .into_iter()
                .filter_map(|index| {
                    groups
                        .get_index(index)
                        .map(|(name, _)| (index, name.as_str()))
                })
                .collect();
            member.sort_by(|(a, a_name), (b, b_name)| {
                depths[*a].cmp(&depths[*b]).then_with(|| a_name.cmp(b_name))
            });
            // Ansible's order: the inventory's own group variables (all, then groups by
            // depth), then group_vars/all, group_vars/GROUP by depth, then the
            // inventory's host variables, then host_vars/HOST.
            let mut vars = Level::default();
            for &(index, _) in &member {
                if let Some((_, group)) = groups.get_index(index) {
                    vars.merge(&group.vars);
                }
            }
            for &(_, group) in &member {
                if let Some(found) = dir_group_vars.get(group) {
                    vars.merge(found);
                }
            }
            vars.merge(&host.vars);
            if let Some(found) = dir_host_vars.get(&name) {
                vars.merge(found);
            }
            let groups = member
                .into_iter()
                .map(|(_, name)| name.to_string())
                .collect();
            resolved.insert(
                name.clone(),
                InventoryHost {
                    name,
                    groups,
                    vars: vars.vars,
                    templates: vars.templates,
                },
            );
        }
        Ok(Inventory { hosts: resolved })
    }

    /// Each group's depth (longest `children` path from `all`), by group index.
    fn depths(&self) -> Result<Vec<usize>, Vec<String>> {
        let count = self.groups.len();
        let index_of = |name: &String| self.groups.get_index_of(name);
        let mut waiting: Vec<usize> = self.groups.values().map(|g| g.parents.len()).collect();
        let mut depth = vec![0; count];
        let mut done = vec![false; count];
        // Kahn's topological order: a group is placed once all its parents are, so its
        // depth is final by then, and groups never placed lie on or below a cycle.
        let mut queue: VecDeque<usize> = (0..count).filter(|&i| waiting[i] == 0).collect();
        while let Some(index) = queue.pop_front() {
            done[index] = true;
            let Some((_, group)) = self.groups.get_index(index) else {
                continue;
            };
            for child in group.children.iter().filter_map(index_of) {
                depth[child] = depth[child].max(depth[index] + 1);
                waiting[child] -= 1;
                if waiting[child] == 0 {
                    queue.push_back(child);
                }
            }
        }
        let Some(start) = done.iter().position(|&placed| !placed) else {
            return Ok(depth);
        };
        // Every unplaced group has an unplaced parent, so walking up through them must
        // come back to a group already seen: that stretch of the walk is a cycle.
        let mut walk = vec![start];
        let mut current = start;
        loop {
            let parent = self.groups.get_index(current).and_then(|(_, group)| {
                group
                    .parents
                    .iter()
                    .filter_map(index_of)
                    .find(|&parent| !done[parent])
            });
            let Some(parent) = parent else {
                break;
            };
            if let Some(position) = walk.iter().position(|&seen| seen == parent) {
                walk.drain(..position);
                walk.push(parent);
                break;
            }
            walk.push(parent);
            current = parent;
        }
        walk.reverse();
        Err(walk
            .into_iter()
            .filter_map(|index| self.groups.get_index(index).map(|(name, _)| name.clone()))
            .collect())
    }
}

/// Sets `name` in `vars`, dropping the other spellings of the same connection setting.
pub(super) fn set_var(vars: &mut Vars, name: &str, value: Value) {
    if let Some(spellings) = SETTINGS.iter().find(|spellings| spellings.contains(&name)) {
        for other in spellings.iter().filter(|&&other| other != name) {
            vars.shift_remove(*other);
        }
    }
    vars.insert(name.to_string(), value);
}
