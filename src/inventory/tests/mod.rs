use super::*;
use serde_json::{json, Value};

use super::files::is_yaml;
use super::names::{expand_hosts, NameError};
use crate::ssh_config::Local;
use crate::transport::{Connection, HostKeyChecking, SshOptions, Target};

mod files;
mod ini;
mod names;
mod patterns;
mod tagged;
mod target;
mod yaml;

fn yaml(text: &str) -> Inventory {
    Inventory::parse_yaml(text, Path::new("inv.yml")).expect("valid YAML inventory")
}

fn ini(text: &str) -> Inventory {
    Inventory::parse_ini(text, Path::new("hosts.ini")).expect("valid INI inventory")
}

fn yaml_err(text: &str) -> String {
    Inventory::parse_yaml(text, Path::new("inv.yml"))
        .expect_err("invalid YAML inventory")
        .to_string()
}

fn ini_err(text: &str) -> String {
    Inventory::parse_ini(text, Path::new("hosts.ini"))
        .expect_err("invalid INI inventory")
        .to_string()
}

fn names(hosts: &[&InventoryHost]) -> Vec<String> {
    hosts.iter().map(|host| host.name.clone()).collect()
}

fn all_names(inventory: &Inventory) -> Vec<String> {
    inventory.hosts().map(|host| host.name.clone()).collect()
}

fn target(host: &InventoryHost) -> Result<Target, InventoryError> {
    let settings = host.settings_with(Some(Path::new("/home/alice")))?;
    Ok(Target::new(&host.name, settings, "alice"))
}

/// The target the inventory alone describes, with the defaults of this environment.
fn env_target(host: &InventoryHost) -> Result<Target, InventoryError> {
    Ok(Target::new(
        &host.name,
        host.settings()?,
        &Local::from_env().user,
    ))
}

/// Whether the inventory gave the port, the user and the host key checking itself.
fn given(host: &InventoryHost) -> [bool; 3] {
    let settings = host.settings().expect("valid");
    [
        settings.port.is_some(),
        settings.user.is_some(),
        settings.host_key_checking.is_some(),
    ]
}
