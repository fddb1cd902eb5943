use super::*;

#[test]
fn range_errors() {
    let message = |pattern: &str| expand_hosts(pattern).expect_err(pattern).to_string();
    assert_eq!(
        message("web[1:3"),
        "invalid host range in \"web[1:3\": missing `]`"
    );
    assert_eq!(
        message("web[01:3]"),
        "invalid host range in \"web[01:3]\": a zero-padded range needs start and end of \
             the same width"
    );
    assert_eq!(
        message("web[a:3]"),
        "invalid host range in \"web[a:3]\": bounds must be two integers or two letters of \
             the same case"
    );
    assert_eq!(
        message("web[1]"),
        "invalid host range in \"web[1]\": expected [start:end] or [start:end:step]"
    );
    assert_eq!(
        message("web[1:3:0]"),
        "invalid host range in \"web[1:3:0]\": the step must be a positive integer"
    );
    assert_eq!(
        message("web[0:99999999]"),
        "invalid host range in \"web[0:99999999]\": expands to too many hosts"
    );
    assert_eq!(
        message("a[0:999]b[0:999]"),
        "invalid host range in \"a[0:999]b[0:999]\": expands to too many hosts"
    );
    assert_eq!(
        message("web[0:99999999999999999999999]"),
        "invalid host range in \"web[0:99999999999999999999999]\": range bounds are too large"
    );
}

#[test]
fn huge_range_bounds_do_not_overflow() {
    let pattern = format!("h[0:{}]", u64::MAX);
    assert!(matches!(
        expand_hosts(&pattern),
        Err(NameError::Range {
            reason: "expands to too many hosts",
            ..
        })
    ));
    assert_eq!(
        expand_hosts(&format!("h[{}:{}]", u64::MAX, u64::MAX)).expect("one host"),
        [format!("h{}", u64::MAX)]
    );
}

#[test]
fn deeply_nested_yaml_is_an_error_not_a_crash() {
    use std::fmt::Write as _;
    let mut text = String::new();
    for depth in 0..300 {
        let indent = "  ".repeat(depth * 2);
        writeln!(text, "{indent}g{depth}:\n{indent}  children:").expect("write to String");
    }
    let error = Inventory::parse_yaml(&text, Path::new("deep.yml")).expect_err("too deep");
    assert!(matches!(error, InventoryError::Yaml { .. }), "{error}");
    assert!(
        error.to_string().contains("recursion limit exceeded"),
        "{error}"
    );
}

#[test]
fn ranges_combine_and_default_their_start() {
    assert_eq!(
        expand_hosts("r[1:2]-[a:b]").expect("valid"),
        ["r1-a", "r1-b", "r2-a", "r2-b"]
    );
    assert_eq!(expand_hosts("n[:2]").expect("valid"), ["n0", "n1", "n2"]);
    assert_eq!(expand_hosts("[A:C]x").expect("valid"), ["Ax", "Bx", "Cx"]);
    assert_eq!(expand_hosts("v[a:e:2]").expect("valid"), ["va", "vc", "ve"]);
}

#[test]
fn host_list_with_ports() {
    let inventory = Inventory::from_host_list("web1, web2:2222,db[1:2]:2200,").expect("valid");
    assert_eq!(all_names(&inventory), ["web1", "web2", "db1", "db2"]);
    let port = |name: &str| {
        target(inventory.host(name).expect("host"))
            .expect("target")
            .port
    };
    assert_eq!(port("web1"), 22);
    assert_eq!(port("web2"), 2222);
    assert_eq!(port("db2"), 2200);
    assert_eq!(
        inventory.host("web1").expect("host").groups,
        ["all", "ungrouped"]
    );
    assert!(Inventory::from_host_list(",")
        .expect("valid")
        .hosts()
        .next()
        .is_none());
}

#[test]
fn host_list_errors() {
    let message = |list: &str| Inventory::from_host_list(list).expect_err(list).to_string();
    assert_eq!(
        message("web1,web2:ssh"),
        "invalid host list `web1,web2:ssh`: invalid port in \"web2:ssh\": expected an \
             integer from 1 to 65535"
    );
    assert_eq!(
        message("web1,web2:0"),
        "invalid host list `web1,web2:0`: invalid port in \"web2:0\": expected an integer \
             from 1 to 65535"
    );
    assert_eq!(
        message("user@web1,"),
        "invalid host list `user@web1,`: invalid host name \"user@web1\": only letters, \
             digits, '.', '-' and '_' are allowed"
    );
}
