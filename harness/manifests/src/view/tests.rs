//! The typed view's own rules, checked on hand-built values.

use super::*;

#[test]
fn path_prefixes_match_whole_segments() {
    let route = RouteView {
        location: Location {
            file: "routes.yaml".into(),
            doc: 0,
        },
        namespace: "ns".into(),
        name: "r".into(),
        gateway: "gw".into(),
        path_prefix: "/public".into(),
        backend: ServiceRef {
            namespace: "ns".into(),
            name: "svc".into(),
            port: 80,
        },
    };
    assert!(route.matches("/public"));
    assert!(route.matches("/public/mcp"));
    assert!(!route.matches("/publicity"));
    assert!(!route.matches("/privileged/mcp"));
}
