use super::*;

const PATTERNS: &str = "
all:
  hosts:
    lone:
  children:
    app:
      hosts: {app1: , app2: , app3: }
    db:
      hosts: {db1: , db2: }
    staging:
      hosts: {app2: , db2: }
    web:
      hosts: {web1: , web2: , web10: }
";

fn select(pattern: &str) -> Vec<String> {
    names(&yaml(PATTERNS).select(pattern))
}

#[test]
fn pattern_all_and_star() {
    let everyone = [
        "lone", "app1", "app2", "app3", "db1", "db2", "web1", "web2", "web10",
    ];
    assert_eq!(select("all"), everyone);
    assert_eq!(select("*"), everyone);
}

#[test]
fn pattern_names() {
    assert_eq!(select("app"), ["app1", "app2", "app3"]);
    assert_eq!(select("db1"), ["db1"]);
    assert_eq!(select("ungrouped"), ["lone"]);
    assert_eq!(select("nothing"), Vec::<String>::new());
    assert_eq!(select("App"), Vec::<String>::new());
}

#[test]
fn pattern_globs() {
    assert_eq!(select("web*"), ["web1", "web2", "web10"]);
    assert_eq!(select("web?"), ["web1", "web2"]);
    assert_eq!(select("*1"), ["app1", "db1", "web1"]);
    assert_eq!(select("st*ing"), ["app2", "db2"]);
    assert_eq!(select("*a*p*"), ["app1", "app2", "app3"]);
    assert_eq!(select("w?b*0"), ["web10"]);
}

#[test]
fn pattern_union_keeps_inventory_order_without_duplicates() {
    assert_eq!(select("db:app"), ["app1", "app2", "app3", "db1", "db2"]);
    assert_eq!(select("staging,app"), ["app1", "app2", "app3", "db2"]);
    assert_eq!(select("db1 , db1:db"), ["db1", "db2"]);
}

#[test]
fn pattern_exclusion() {
    assert_eq!(select("app:!app3"), ["app1", "app2"]);
    assert_eq!(select("app:!staging"), ["app1", "app3"]);
    assert_eq!(select("!app3:app"), ["app1", "app2"]);
    assert_eq!(
        select("!web*"),
        ["lone", "app1", "app2", "app3", "db1", "db2"]
    );
}

#[test]
fn pattern_intersection() {
    assert_eq!(select("app:&staging"), ["app2"]);
    assert_eq!(select("app:db:&staging"), ["app2", "db2"]);
    assert_eq!(select("&staging"), ["app2", "db2"]);
    assert_eq!(select("app:db:&staging:!db2"), ["app2"]);
    assert_eq!(select("web:&staging"), Vec::<String>::new());
}

#[test]
fn pattern_without_terms_matches_nothing() {
    assert_eq!(select(""), Vec::<String>::new());
    assert_eq!(select(" : , "), Vec::<String>::new());
    assert_eq!(select("!:&"), Vec::<String>::new());
}

#[test]
fn glob_matching() {
    assert!(crate::glob::matches("*", ""));
    assert!(crate::glob::matches("a*b*c", "aXbYbZc"));
    assert!(crate::glob::matches("**x", "x"));
    assert!(!crate::glob::matches("a*b", "acbd"));
    assert!(!crate::glob::matches("?", ""));
    assert!(crate::glob::matches("?é", "xé"));
}

#[test]
fn limit_narrows_the_inventory() {
    let mut inventory = yaml(PATTERNS);
    inventory.limit("app:db:!db1").expect("matches");
    assert_eq!(all_names(&inventory), ["app1", "app2", "app3", "db2"]);
    assert_eq!(
        names(&inventory.select("all")),
        ["app1", "app2", "app3", "db2"]
    );
    assert_eq!(names(&inventory.select("staging")), ["app2", "db2"]);
    inventory.limit("web*:app1").expect("matches");
    assert_eq!(all_names(&inventory), ["app1"]);
}

#[test]
fn limit_matching_nothing_is_an_error() {
    let mut inventory = yaml(PATTERNS);
    let error = inventory.limit("web:&db").expect_err("no match");
    assert!(matches!(&error, InventoryError::NoHostsMatched { pattern } if pattern == "web:&db"));
    assert_eq!(
        error.to_string(),
        "no inventory host matches --limit `web:&db`"
    );
    // The inventory is untouched.
    assert_eq!(inventory.hosts().count(), 9);
    assert!(inventory.limit("").is_err());
}
