//! The approval policy's file, rule matching and eligibility, as the gate and hitl-ui use them.

use super::*;

const LAB: &str = r#"
[groups.platform]
members = ["reviewer"]
[groups.dba]
members = ["dba-ann"]
[groups.sre]
members = ["sre-sam"]

[[rule]]
name = "migration-down-to-v1"
tool = "run_migration"
args = { version = "v1" }
groups = ["dba", "sre"]
approvals = 2
reason_to_reject = true

[[rule]]
name = "migrations"
tool = "run_migration"
groups = ["platform"]
"#;

fn id(s: &str) -> Identity {
    Identity::parse(s).unwrap()
}

#[test]
fn the_first_matching_rule_decides_and_no_rule_denies() {
    let policy = Policy::parse(LAB, "policy.toml").unwrap();
    let down = serde_json::json!({"version": "v1"});
    let up = serde_json::json!({"version": "v3"});
    let rule = |args| {
        policy
            .rule_for("/mcp", "run_migration", args)
            .map(|r| r.view.name.as_str())
    };
    assert_eq!(rule(&down), Some("migration-down-to-v1"));
    assert_eq!(rule(&up), Some("migrations"));
    assert!(policy.rule_for("/mcp", "truncate_table", &up).is_none());
    assert_eq!(policy.static_groups(&id("Dba-Ann")), ["dba"]);
    assert!(policy.static_groups(&id("mallory")).is_empty());
}

/// A rule for a path holds for that path with a query string too: `?x` reaches the same
/// endpoint and must not fall through to a weaker rule after it.
#[test]
fn a_query_string_does_not_slip_past_a_rule_for_its_path() {
    let strict = LAB.replacen(
        "[[rule]]\nname = \"migration-down-to-v1\"",
        "[[rule]]\nname = \"privileged\"\nroute = \"/privileged/mcp\"\ntool = \"*\"\n\
         groups = [\"dba\"]\napprovals = 2\n\n[[rule]]\nname = \"migration-down-to-v1\"",
        1,
    );
    let policy = Policy::parse(&strict, "p.toml").unwrap();
    let up = serde_json::json!({"version": "v3"});
    for path in [
        "/privileged/mcp",
        "/privileged/mcp?x=1",
        "/privileged/mcp#f",
    ] {
        let rule = policy.rule_for(path, "run_migration", &up);
        assert_eq!(
            rule.map(|r| r.view.name.as_str()),
            Some("privileged"),
            "{path}"
        );
    }
    let elsewhere = policy.rule_for("/public/mcp", "run_migration", &up);
    assert_eq!(elsewhere.map(|r| r.view.name.as_str()), Some("migrations"));
}

#[test]
fn mistakes_are_named_with_their_line() {
    let unknown = LAB.replace(r#"["dba", "sre"]"#, r#"["dba", "sres"]"#);
    let e = Policy::parse(&unknown, "p.toml").unwrap_err();
    assert_eq!((e.line, e.origin.as_str()), (13, "p.toml"), "{e}");
    assert!(e.to_string().contains("unknown group \"sres\""), "{e}");

    let e = Policy::parse("[[rule]]\nname = 1\n", "p.toml").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    let e = Policy::parse(
        "[[rule]]\nname='a'\ntool='t'\ngroups=['*']\napprovals=0\n",
        "p",
    )
    .unwrap_err();
    assert_eq!(e.line, 5, "{e}");
    let e = Policy::parse(
        "[[rule]]\nname='a'\ntool='t'\ngroups=['*']\ncolour='red'\n",
        "p",
    )
    .unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    assert!(Policy::parse("", "p").is_err(), "no rule at all is refused");
    let e = Policy::parse("[groups.a]\nmembers=['ann\u{200b}']\n", "p").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn eligibility_groups_requester_twice_and_reasons() {
    let policy = Policy::parse(LAB, "p").unwrap();
    let two = &policy.rules[0].view;
    let dba = vec!["dba".to_owned()];
    let ann = ApprovalView {
        reviewer: "dba-ann".to_owned(),
        at: OffsetDateTime::UNIX_EPOCH,
        reason: String::new(),
    };
    let may = |who: &str, groups: &[String], approvals: &[ApprovalView], approve, reason| {
        may_decide(
            two,
            approvals,
            Some("alice"),
            &id(who),
            groups,
            approve,
            reason,
        )
    };
    assert_eq!(may("dba-ann", &dba, &[], true, ""), Ok(()));
    assert!(matches!(
        may("reviewer", &["platform".to_owned()], &[], true, ""),
        Err(NotEligible::NotInGroups { .. })
    ));
    assert_eq!(
        may("Alice", &dba, &[], true, ""),
        Err(NotEligible::IsRequester)
    );
    assert_eq!(
        may("DBA-ANN", &dba, std::slice::from_ref(&ann), true, ""),
        Err(NotEligible::AlreadyApproved),
        "the same person under another spelling"
    );
    assert_eq!(
        may("dba-ann", &dba, &[], false, "  "),
        Err(NotEligible::ReasonRequired { approve: false })
    );
    assert_eq!(may("dba-ann", &dba, &[ann], false, "drops data"), Ok(()));
    let anyone = &Policy::anyone_once().rules[0].view;
    assert_eq!(
        may_decide(anyone, &[], None, &id("bob"), &[], true, ""),
        Ok(())
    );
}
