//! mock-db-mcp, driven like an agent would drive it: the real binary, a standard MCP client
//! over Streamable HTTP, and raw HTTP for the requests a good client never sends.

use hitl_lab::components::mock_db::Options;
use hitl_lab_tests::{
    mock_db::{McpClient, MockDb, USER_AGENT, call},
    scratch_dir,
};
use hitl_wire::mockdb::{State, paths, tools};
use rmcp::{
    ClientLifecycleMode,
    model::{ErrorCode, ProtocolVersion},
    service::ServiceError,
};
use serde_json::{Value, json};

// ---------- helpers that read like the behaviour ----------

async fn start(test: &str) -> MockDb {
    MockDb::start(&scratch_dir(&format!("mock_db_mcp/{test}")))
        .await
        .expect("start mock-db-mcp")
}

/// mock-db-mcp without approval checks (`INSECURE_NO_APPROVAL_KEY`): privileged calls execute without an approval token
/// (`--insecure-no-approval-key`). For the tests of what a migration does; what an approval
/// must be is checked in `tests/approval.rs`.
fn unapproved(options: Options) -> Options {
    Options {
        approval_verifying_key: None,
        insecure_no_approval_key: true,
        ..options
    }
}

async fn start_unapproved(test: &str) -> MockDb {
    MockDb::start_with(&scratch_dir(&format!("mock_db_mcp/{test}")), unapproved)
        .await
        .expect("start mock-db-mcp")
}

/// Run `sql` with `cluster_db_query`, expecting success: the structured result.
async fn query(client: &McpClient, sql: &str) -> Value {
    let result = call(client, tools::CLUSTER_DB_QUERY, json!({ "sql": sql }))
        .await
        .unwrap_or_else(|e| panic!("{sql:?}: {e}"));
    assert_eq!(result.is_error, Some(false), "{sql:?}: {result:?}");
    result.structured_content.expect("structured result")
}

/// Call `tool` expecting a tool error (`isError: true`): its message.
async fn tool_error(client: &McpClient, tool: &str, args: Value) -> String {
    let result = call(client, tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool} {args}: expected a tool error, got {e}"));
    assert_eq!(result.is_error, Some(true), "{tool} {args}: {result:?}");
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Call `tool` expecting success: the structured result.
async fn tool_ok(client: &McpClient, tool: &str, args: Value) -> Value {
    let result = call(client, tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"));
    assert_eq!(result.is_error, Some(false), "{tool} {args}: {result:?}");
    result.structured_content.expect("structured result")
}

/// Call `tool` expecting a JSON-RPC error: its code and message.
async fn protocol_error(client: &McpClient, tool: &str, args: Value) -> (ErrorCode, String) {
    match call(client, tool, args).await {
        Err(ServiceError::McpError(err)) => (err.code, err.message.into_owned()),
        other => panic!("{tool}: expected a JSON-RPC error, got {other:?}"),
    }
}

fn counts(state: &State) -> Vec<(&str, u64)> {
    state
        .row_counts
        .iter()
        .map(|(t, n)| (t.as_str(), *n))
        .collect()
}

const SEED_COUNTS: [(&str, u64); 2] = [("customers", 3), ("orders", 3)];

async fn assert_untouched(db: &MockDb) {
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v2");
    assert_eq!(counts(&state), SEED_COUNTS);
    assert!(
        state.audit.is_empty(),
        "nothing should be audited: {:?}",
        state.audit
    );
}

// ---------- discovery ----------

#[tokio::test]
async fn each_endpoint_lists_its_own_tools() {
    let db = start("listing").await;
    let public = db.public("alice").await.unwrap();
    let privileged = db.privileged("alice").await.unwrap();

    let public_tools = public.list_all_tools().await.unwrap();
    let privileged_tools = privileged.list_all_tools().await.unwrap();
    insta::assert_json_snapshot!("public_tools", public_tools);
    insta::assert_json_snapshot!("privileged_tools", privileged_tools);

    let info = public.peer_info().expect("initialize result");
    let server = info.server_info.as_ref().expect("server info");
    assert_eq!(server.name, "mock-db-mcp/public");
}

// ---------- cluster_db_query ----------

#[tokio::test]
async fn query_answers_joins_filters_and_counts() {
    let db = start("query").await;
    let client = db.public("alice").await.unwrap();

    let all = query(&client, "SELECT * FROM orders ORDER BY id").await;
    assert_eq!(all["schema_version"], "v2");
    assert_eq!(
        all["columns"],
        json!(["id", "customer", "amount", "status"])
    );
    assert_eq!(
        all["rows"][2],
        json!({ "id": 3, "customer": "initech", "amount": 1800.0, "status": "pending" })
    );
    assert_eq!(all["truncated"], false);

    let gold = query(
        &client,
        "SELECT o.id, c.name, c.tier FROM orders o JOIN customers c ON c.name = o.customer \
         WHERE c.tier = 'gold'",
    )
    .await;
    assert_eq!(
        gold["rows"],
        json!([{ "id": 1, "name": "acme", "tier": "gold" }])
    );

    let paid = query(
        &client,
        "SELECT COUNT(*) AS n, SUM(amount) AS total FROM orders WHERE status = 'paid'",
    )
    .await;
    assert_eq!(paid["rows"], json!([{ "n": 2, "total": 241.5 }]));

    let many = query(
        &client,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 500) SELECT i FROM n",
    )
    .await;
    assert_eq!(many["row_count"], 200);
    assert_eq!(many["truncated"], true);

    assert_untouched(&db).await;
}

#[tokio::test]
async fn query_refuses_every_write_and_changes_nothing() {
    let db = start("query_writes").await;
    let client = db.public("mallory").await.unwrap();
    for (sql, says) in [
        ("DELETE FROM orders", "DELETE from orders"),
        ("SELECT 1; DELETE FROM orders", "DELETE from orders"),
        ("SELECT * FROM orders; DROP TABLE orders", "DROP"),
        ("UPDATE orders SET amount = 0", "UPDATE of orders"),
        (
            "INSERT INTO customers VALUES ('evil', 'gold')",
            "INSERT into customers",
        ),
        (
            "WITH doomed AS (SELECT id FROM orders) DELETE FROM orders WHERE id IN doomed",
            "DELETE",
        ),
        ("ATTACH DATABASE 'file:/tmp/x.db' AS x", "ATTACH"),
        ("PRAGMA user_version = 42", "PRAGMA user_version = 42"),
        ("PRAGMA query_only = OFF", "PRAGMA query_only"),
        ("CREATE TABLE t (a)", "CREATE"),
        ("BEGIN IMMEDIATE", "transaction"),
    ] {
        let message = tool_error(&client, tools::CLUSTER_DB_QUERY, json!({ "sql": sql })).await;
        assert!(message.contains(says), "{sql:?} → {message}");
        assert!(message.contains("read-only"), "{sql:?} → {message}");
    }
    assert_untouched(&db).await;
}

#[tokio::test]
async fn query_refuses_oversized_and_multiple_statements() {
    let db = start("query_limits").await;
    let client = db.public("alice").await.unwrap();

    let huge = format!("SELECT '{}'", "x".repeat(9000));
    let message = tool_error(&client, tools::CLUSTER_DB_QUERY, json!({ "sql": huge })).await;
    assert!(message.contains("limit is 8192 bytes"), "{message}");

    let message = tool_error(
        &client,
        tools::CLUSTER_DB_QUERY,
        json!({ "sql": "SELECT 1; SELECT 2" }),
    )
    .await;
    assert!(message.contains("exactly one SELECT"), "{message}");

    let message = tool_error(
        &client,
        tools::CLUSTER_DB_QUERY,
        json!({ "sql": "SELECT * FROM nope" }),
    )
    .await;
    assert!(message.contains("no such table: nope"), "{message}");
    assert!(message.contains("customers(name, tier)"), "{message}");

    assert_untouched(&db).await;
}

// ---------- truncate_table ----------

#[tokio::test]
async fn state_without_the_audit_is_the_same_shape_with_none_and_a_bad_query_is_refused() {
    let db = start("state_query").await;
    let client = db.public("alice").await.unwrap();
    tool_ok(&client, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    let http = reqwest::Client::new();
    let url = db.url(paths::STATE);
    let lean: State = http
        .get(&url)
        .query(&[("audit", "none")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whole = db.state().await.unwrap();
    assert_eq!(whole.audit.len(), 1);
    assert!(lean.audit.is_empty());
    assert_eq!(
        (lean.schema_version, lean.row_counts),
        (whole.schema_version, whole.row_counts)
    );
    let bad = http
        .get(&url)
        .query(&[("audit", "some")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn truncate_empties_the_table_and_audits_who_asked() {
    let db = start("truncate").await;
    let client = db
        .connect(
            paths::PUBLIC_MCP,
            &[
                ("x-user-id", "alice"),
                ("x-agent-id", "dba-assistant"),
                ("authorization", "Bearer not-an-identity"),
            ],
        )
        .await
        .unwrap();

    let result = tool_ok(&client, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    assert_eq!(result["rows_deleted"], 3);

    let state = db.state().await.unwrap();
    assert_eq!(counts(&state), [("customers", 3), ("orders", 0)]);
    let [entry] = state.audit.as_slice() else {
        panic!("one audit entry expected: {:?}", state.audit)
    };
    assert_eq!(entry.seq, 1);
    assert_eq!(entry.tool, "truncate_table");
    assert_eq!(entry.args, json!({ "table": "orders" }));
    assert_eq!(entry.detail, json!({ "rows_deleted": 3 }));
    assert_eq!(
        entry.caller,
        [
            ("user-agent".to_owned(), USER_AGENT.to_owned()),
            ("x-agent-id".to_owned(), "dba-assistant".to_owned()),
            ("x-user-id".to_owned(), "alice".to_owned()),
        ]
        .into()
    );

    // Again: nothing left to delete, still audited (the call reached the database).
    let again = tool_ok(&client, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    assert_eq!(again["rows_deleted"], 0);
    let state = db.state().await.unwrap();
    assert_eq!(state.audit.len(), 2);
    assert_eq!(state.audit[1].seq, 2);
}

#[tokio::test]
async fn truncate_accepts_only_existing_tables() {
    let db = start("truncate_unknown").await;
    let client = db.public("alice").await.unwrap();
    for table in [
        "nope",
        "schema_migrations",
        "sqlite_master",
        "orders; DROP TABLE customers",
        "\"orders\"",
        "",
    ] {
        let message = tool_error(&client, tools::TRUNCATE_TABLE, json!({ "table": table })).await;
        assert!(message.contains("unknown table"), "{table:?} → {message}");
        assert!(
            message.contains("customers, orders"),
            "{table:?} → {message}"
        );
    }
    assert_untouched(&db).await;
}

// ---------- run_migration ----------

#[tokio::test]
async fn migrations_move_the_schema_both_ways_and_record_from_and_to() {
    let db = start_unapproved("migrate").await;
    let admin = db.privileged("platform-admin").await.unwrap();
    let public = db.public("alice").await.unwrap();

    let up = tool_ok(&admin, tools::RUN_MIGRATION, json!({ "version": "v3" })).await;
    assert_eq!(
        (&up["from"], &up["to"], up["changed"].as_bool()),
        (&json!("v2"), &json!("v3"), Some(true))
    );
    assert_eq!(db.state().await.unwrap().schema_version, "v3");
    let shipped = query(
        &public,
        "SELECT id, shipped_at FROM orders WHERE shipped_at IS NULL",
    )
    .await;
    assert_eq!(shipped["row_count"], 3);
    assert_eq!(shipped["schema_version"], "v3");

    let same = tool_ok(&admin, tools::RUN_MIGRATION, json!({ "version": "v3" })).await;
    assert_eq!(same["changed"], false);
    assert_eq!(same["message"], "already at v3; nothing to do");

    tool_ok(&admin, tools::RUN_MIGRATION, json!({ "version": "v4" })).await;
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v4");
    assert_eq!(
        counts(&state),
        [("customers", 3), ("orders", 3), ("refunds", 0)]
    );

    let down = tool_ok(&admin, tools::RUN_MIGRATION, json!({ "version": "v1" })).await;
    assert_eq!(down["steps"].as_array().map(Vec::len), Some(3));
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v1");
    assert_eq!(counts(&state), SEED_COUNTS);

    let audited: Vec<(String, Value, Value, Option<&str>)> = state
        .audit
        .iter()
        .map(|e| {
            (
                e.tool.clone(),
                e.detail["from"].clone(),
                e.detail["to"].clone(),
                e.caller.get("x-user-id").map(String::as_str),
            )
        })
        .collect();
    let migration = |from: &str, to: &str| {
        (
            "run_migration".to_owned(),
            json!(from),
            json!(to),
            Some("platform-admin"),
        )
    };
    assert_eq!(
        audited,
        [
            migration("v2", "v3"),
            migration("v3", "v3"),
            migration("v3", "v4"),
            migration("v4", "v1"),
        ]
    );
    assert_eq!(state.audit[0].args, json!({ "version": "v3" }));
}

// ---------- bad input ----------

#[tokio::test]
async fn bad_arguments_are_tool_errors_that_say_what_was_wrong() {
    let db = start_unapproved("bad_args").await;
    let public = db.public("alice").await.unwrap();
    let privileged = db.privileged("alice").await.unwrap();

    for (client, tool, args, says) in [
        (
            &public,
            tools::CLUSTER_DB_QUERY,
            json!({}),
            "missing field `sql`",
        ),
        (
            &public,
            tools::CLUSTER_DB_QUERY,
            json!({ "sql": "SELECT 1", "limit": 5 }),
            "unknown field `limit`",
        ),
        (
            &public,
            tools::CLUSTER_DB_QUERY,
            json!({ "sql": 42 }),
            "invalid type: integer `42`, expected a string",
        ),
        (
            &public,
            tools::TRUNCATE_TABLE,
            json!({ "name": "orders" }),
            "unknown field `name`",
        ),
        (
            &public,
            tools::TRUNCATE_TABLE,
            json!({ "table": ["orders"] }),
            "invalid type",
        ),
        (
            &privileged,
            tools::RUN_MIGRATION,
            json!({}),
            "missing field `version`",
        ),
        (
            &privileged,
            tools::RUN_MIGRATION,
            json!({ "version": "v9" }),
            "expected one of `v1`, `v2`, `v3`, `v4`",
        ),
        (
            &privileged,
            tools::RUN_MIGRATION,
            json!({ "version": 3 }),
            "invalid type",
        ),
    ] {
        let message = tool_error(client, tool, args.clone()).await;
        assert!(message.contains(says), "{tool} {args} → {message}");
    }
    assert_untouched(&db).await;
}

#[tokio::test]
async fn unknown_tools_are_protocol_errors_naming_what_is_served() {
    let db = start("unknown_tool").await;
    let public = db.public("alice").await.unwrap();
    let privileged = db.privileged("alice").await.unwrap();

    let (code, message) = protocol_error(&public, "drop_database", json!({})).await;
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(
        message.contains("cluster_db_query, truncate_table"),
        "{message}"
    );

    // Each endpoint serves only its own tools.
    let (code, _) = protocol_error(&public, tools::RUN_MIGRATION, json!({ "version": "v3" })).await;
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    let (code, message) = protocol_error(
        &privileged,
        tools::TRUNCATE_TABLE,
        json!({ "table": "orders" }),
    )
    .await;
    assert_eq!(code, ErrorCode::INVALID_PARAMS);
    assert!(message.contains("serves run_migration"), "{message}");

    assert_untouched(&db).await;
}

#[tokio::test]
async fn malformed_http_requests_get_4xx_with_a_reason() {
    let db = start("malformed").await;

    let broken = db
        .post_raw(
            paths::PUBLIC_MCP,
            "application/json",
            r#"{"jsonrpc":"2.0","id":1,"#,
        )
        .await
        .unwrap();
    assert_eq!(broken.status, 400);
    assert_eq!(broken.json().unwrap()["error"]["code"], -32700);

    let not_jsonrpc = db
        .post_raw(
            paths::PUBLIC_MCP,
            "application/json",
            r#"{"hello":"world"}"#,
        )
        .await
        .unwrap();
    assert_eq!(not_jsonrpc.status, 400);
    let error = &not_jsonrpc.json().unwrap()["error"];
    assert_eq!(error["code"], -32600);
    assert!(
        error["message"].as_str().unwrap().contains("JSON-RPC"),
        "{error}"
    );

    let batch = db
        .post_raw(paths::PRIVILEGED_MCP, "application/json", "[]")
        .await
        .unwrap();
    assert_eq!(batch.status, 400);
    assert_eq!(batch.json().unwrap()["error"]["code"], -32600);

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "truncate_table", "arguments": {"table": "orders"}}});
    let wrong_type = db
        .post_raw(paths::PUBLIC_MCP, "text/plain", call.to_string())
        .await
        .unwrap();
    assert_eq!(wrong_type.status, 415);
    assert!(
        wrong_type.body.contains("application/json"),
        "{}",
        wrong_type.body
    );

    // Over the 64 KiB bound, small enough to be sent whole before the server answers.
    let too_big = db
        .post_raw(
            paths::PUBLIC_MCP,
            "application/json",
            vec![b' '; 100 * 1024],
        )
        .await
        .unwrap();
    assert_eq!(too_big.status, 413);

    // The server is fine afterwards and nothing changed.
    assert_untouched(&db).await;
}

#[tokio::test]
async fn a_body_as_large_as_the_gate_forwards_is_accepted_and_a_larger_one_changes_nothing() {
    let db = start("body-limit").await;
    // 64 KiB exactly (the most the gate forwards): a JSON-RPC call padded with whitespace.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "cluster_db_query", "arguments": {"sql": "SELECT 1 AS one"}}})
    .to_string();
    let mut legit = call.clone().into_bytes();
    legit.resize(64 * 1024, b' ');
    let answer = db
        .post_raw(paths::PUBLIC_MCP, "application/json", legit)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("\"one\":1"), "{}", answer.body);

    // One byte more, on a destructive call: 413, and the table keeps its rows.
    let truncate = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "truncate_table", "arguments": {"table": "orders"}}})
    .to_string();
    let mut oversized = truncate.into_bytes();
    oversized.resize(64 * 1024 + 1, b' ');
    let refused = db
        .post_raw(paths::PUBLIC_MCP, "application/json", oversized)
        .await
        .unwrap();
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert_untouched(&db).await;
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_at_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/slow-headers"), |o| {
        o.header_read_timeout("1s")
    })
    .await
    .unwrap();
    let addr = format!("127.0.0.1:{}", db.options.port);
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = std::time::Instant::now();
    // One header byte every 100 ms, for up to 5 s: far slower than any real client.
    let header = b"GET /state HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut = false;
    for byte in header {
        if slow.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        match tokio::time::timeout(std::time::Duration::from_millis(100), slow.read(&mut buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    let after = started.elapsed();
    assert!(cut, "the slow client was still connected after {after:?}");
    assert!(
        after < std::time::Duration::from_secs(4),
        "cut only after {after:?} (timeout 1 s)"
    );
    // Everyone else is served as usual.
    db.state().await.unwrap();
}

// ---------- budgets: a query can neither run forever nor eat the memory ----------

/// A query that never ends by itself.
const RUNAWAY_CTE: &str =
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n";
/// 20 000 distinct 60 000-byte values: 1.2 GB if SQLite were let to keep them.
const HUGE_DISTINCT: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n \
     LIMIT 20000) SELECT count(DISTINCT randomblob(60000)) AS n FROM n";

#[tokio::test]
async fn a_runaway_recursive_query_stops_at_the_time_budget() {
    let db = start("time-budget").await;
    let client = db.public("alice").await.unwrap();
    let started = std::time::Instant::now();
    let error = tool_error(
        &client,
        tools::CLUSTER_DB_QUERY,
        json!({ "sql": RUNAWAY_CTE }),
    )
    .await;
    assert!(error.contains("time budget of 1 s"), "{error}");
    assert!(
        error.contains(hitl_wire::env::mockdb::QUERY_TIME_BUDGET),
        "{error}"
    );
    eprintln!("informational: stopped after {:?}", started.elapsed());
    // The reader is usable afterwards.
    assert_eq!(
        query(&client, "SELECT count(*) AS n FROM orders").await["rows"][0]["n"],
        3
    );
    assert_untouched(&db).await;
}

#[tokio::test]
async fn a_query_needing_too_much_memory_stops_at_the_memory_budget() {
    // A generous time budget, so the memory budget is what stops it.
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/memory-budget"), |o| {
        o.query_budgets("60s", "64MiB")
    })
    .await
    .unwrap();
    let client = db.public("alice").await.unwrap();
    let error = tool_error(
        &client,
        tools::CLUSTER_DB_QUERY,
        json!({ "sql": HUGE_DISTINCT }),
    )
    .await;
    assert!(
        error.contains("more memory than its budget of 64 MiB"),
        "{error}"
    );
    assert!(
        error.contains(hitl_wire::env::mockdb::QUERY_MEMORY_BUDGET),
        "{error}"
    );
    let rss = db.peak_rss_kib();
    eprintln!("informational: mock-db-mcp peak RSS {rss:?} KiB");
    if let Some(kib) = rss {
        assert!(kib < 400 * 1024, "peak RSS {kib} KiB");
    }
    // Everything still works: reads, and a write.
    assert_eq!(
        query(&client, "SELECT count(*) AS n FROM orders").await["rows"][0]["n"],
        3
    );
    tool_ok(
        &client,
        tools::TRUNCATE_TABLE,
        json!({ "table": "customers" }),
    )
    .await;
    assert_eq!(db.state().await.unwrap().row_counts["customers"], 0);
}

#[tokio::test]
async fn state_and_writes_answer_while_a_long_query_runs() {
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/long-query"), |o| {
        o.query_budgets("4s", "64MiB")
    })
    .await
    .unwrap();
    let reader = db.public("alice").await.unwrap();
    let writer = db.public("bob").await.unwrap();
    let long = tokio::spawn(async move {
        let error = tool_error(
            &reader,
            tools::CLUSTER_DB_QUERY,
            json!({ "sql": RUNAWAY_CTE }),
        )
        .await;
        (std::time::Instant::now(), error)
    });
    // Let the query get going.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let state = db.state().await.unwrap();
    let state_at = std::time::Instant::now();
    tool_ok(&writer, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    let write_at = std::time::Instant::now();
    assert!(
        !long.is_finished(),
        "the long query ended too early to tell"
    );
    let (long_at, error) = long.await.unwrap();
    assert!(error.contains("time budget of 4 s"), "{error}");
    assert_eq!(state.schema_version, "v2");
    assert!(state_at < long_at, "/state waited for the long query");
    assert!(write_at < long_at, "the write waited for the long query");
    assert_eq!(db.state().await.unwrap().row_counts["orders"], 0);
}

// ---------- Origin: DNS rebinding ----------

#[tokio::test]
async fn origin_is_checked_on_the_mcp_endpoints() {
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/origin"), |o| {
        o.allowed_origins(&["http://localhost:6274"])
    })
    .await
    .unwrap();
    // Without Origin (every agent and gateway): served.
    let plain = db.public("alice").await.unwrap();
    assert_eq!(query(&plain, "SELECT 1 AS one").await["rows"][0]["one"], 1);
    // An allowed browser origin: served.
    let allowed = db
        .connect(
            paths::PUBLIC_MCP,
            &[("x-user-id", "alice"), ("origin", "http://localhost:6274")],
        )
        .await
        .unwrap();
    assert_eq!(
        query(&allowed, "SELECT 1 AS one").await["rows"][0]["one"],
        1
    );
    // A rebinding page's origin: refused before anything runs, on both endpoints.
    let rebinding = db
        .connect(
            paths::PUBLIC_MCP,
            &[("x-user-id", "alice"), ("origin", "http://evil.example")],
        )
        .await;
    assert!(
        rebinding.is_err(),
        "an MCP session from a foreign origin started"
    );
    for (path, tool, args) in [
        (
            paths::PUBLIC_MCP,
            tools::TRUNCATE_TABLE,
            json!({ "table": "orders" }),
        ),
        (
            paths::PRIVILEGED_MCP,
            tools::RUN_MIGRATION,
            json!({ "version": "v3" }),
        ),
    ] {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": args}});
        let refused = db
            .post_with_origin(path, "http://evil.example", &call)
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{path}: {}", refused.body);
        assert_eq!(refused.content_type, "application/json");
        let error = refused.json().unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            error.contains("Origin `http://evil.example` is not allowed"),
            "{error}"
        );
        assert!(error.contains("nothing was executed"), "{error}");
    }
    // A look-alike port is another origin.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let other_port = db
        .post_with_origin(paths::PUBLIC_MCP, "http://localhost:6275", &call)
        .await
        .unwrap();
    assert_eq!(other_port.status, 403);
    assert_untouched(&db).await;
}

#[tokio::test]
async fn by_default_only_the_servers_own_loopback_origins_pass() {
    let db = start("origin-default").await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "truncate_table", "arguments": {"table": "orders"}}});
    // Another local service's page, another site: refused.
    let other_port = db.options.port.wrapping_add(1);
    for origin in [
        format!("http://localhost:{other_port}"),
        format!("http://evil.example:{}", db.options.port),
    ] {
        let refused = db
            .post_with_origin(paths::PUBLIC_MCP, &origin, &call)
            .await
            .unwrap();
        assert_eq!(refused.status, 403, "{origin}: {}", refused.body);
    }
    assert_untouched(&db).await;
    // Its own origin, as a browser on this machine names it: served.
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "page", "version": "1"}}});
    for host in ["localhost", "127.0.0.1"] {
        let origin = format!("http://{host}:{}", db.options.port);
        let served = db
            .post_with_origin(paths::PUBLIC_MCP, &origin, &initialize)
            .await
            .unwrap();
        assert_eq!(served.status, 200, "{origin}: {}", served.body);
    }
}

// ---------- every route: Host and Origin; /reset's credential ----------

/// The official MCP conformance suite's `dns-rebinding-protection` scenario (npm
/// `@modelcontextprotocol/conformance`, installed at a pinned version on first use), against
/// both MCP endpoints: a foreign `Host`/`Origin` is refused, the server's own loopback ones are
/// served. Two checks per endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes_dns_rebinding_protection() {
    use hitl_lab::npm_tools::ConformanceSuite;
    let suite = tokio::task::spawn_blocking(ConformanceSuite::ensure)
        .await
        .unwrap()
        .expect("the MCP conformance suite");
    let db = start("conformance-dns-rebinding").await;
    let (mut passed, mut total) = (0, 0);
    for path in [paths::PUBLIC_MCP, paths::PRIVILEGED_MCP] {
        let (suite, url) = (suite.clone(), db.url(path));
        let outcome = tokio::task::spawn_blocking(move || {
            suite.run_server_scenario(&url, "dns-rebinding-protection")
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            (outcome.passed, outcome.total),
            (2, 2),
            "{path}:\n{}",
            outcome.output
        );
        passed += outcome.passed;
        total += outcome.total;
    }
    assert_eq!((passed, total), (4, 4));
    assert_untouched(&db).await;
}

/// A web page the lab's user opens POSTs to /reset — a "simple" cross-site request
/// (`text/plain`, no preflight), as a form or `fetch(…, {mode: "no-cors"})` sends it: refused,
/// and the database keeps what was done to it.
#[tokio::test]
async fn a_cross_site_page_cannot_reset_the_database() {
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/reset_cross_site"), |o| {
        unapproved(o).reset_token("the-labs-own-token")
    })
    .await
    .unwrap();
    let public = db.public("alice").await.unwrap();
    tool_ok(&public, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    let own_host = format!("127.0.0.1:{}", db.options.port);
    let rebound_host = format!("evil.example:{}", db.options.port);
    for (host, origin, refused_with) in [
        // A page on another site, straight at the loopback address.
        (own_host.as_str(), "https://evil.example", 403),
        // A DNS-rebinding page: its own name now points here.
        (rebound_host.as_str(), "http://evil.example", 421),
    ] {
        let reply = db
            .from_a_page(
                reqwest::Method::POST,
                paths::RESET,
                host,
                Some(origin),
                "text/plain",
                "reset",
            )
            .await
            .unwrap();
        assert_eq!(
            reply.status, refused_with,
            "{host} {origin}: {}",
            reply.body
        );
    }
    let state = db.state().await.unwrap();
    assert_eq!(
        counts(&state),
        [("customers", 3), ("orders", 0)],
        "not reset"
    );
    assert!(state.audit.iter().all(|e| e.tool != tools::RESET));
}

#[tokio::test]
async fn reset_needs_its_credential() {
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/reset_credential"), |o| {
        unapproved(o).reset_token("the-labs-own-token")
    })
    .await
    .unwrap();
    let public = db.public("alice").await.unwrap();
    tool_ok(&public, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    for (what, token) in [
        ("no credential", None),
        ("a wrong token", Some("guess")),
        ("a near miss", Some("the-labs-own-tokenx")),
        ("an empty one", Some("")),
    ] {
        let (status, body) = db.reset_presenting("mallory", token).await.unwrap();
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains("nothing was reset"), "{what}: {body}");
    }
    assert_eq!(counts(&db.state().await.unwrap())[1], ("orders", 0));

    // The lab's own reset, with its token, still works.
    let (status, body) = db.reset("scene-runner").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&db.state().await.unwrap()), SEED_COUNTS);
}

/// A DNS-rebinding page reads as the name it was loaded from: /state (the audit: arguments,
/// identity headers, approval ids) and the MCP endpoints answer only their own names.
#[tokio::test]
async fn state_and_the_mcp_endpoints_answer_only_their_own_host_names() {
    let db = start("host-allow-list").await;
    let port = db.options.port;
    let foreign = format!("evil.example:{port}");
    for (method, path) in [
        (reqwest::Method::GET, paths::STATE),
        (reqwest::Method::POST, paths::RESET),
        (reqwest::Method::POST, paths::PUBLIC_MCP),
        (reqwest::Method::POST, paths::PRIVILEGED_MCP),
    ] {
        let reply = db
            .from_a_page(
                method.clone(),
                path,
                &foreign,
                None,
                "application/json",
                "{}",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 421, "{method} {path}: {}", reply.body);
        assert!(
            reply.body.contains(hitl_wire::env::mockdb::ALLOWED_HOSTS),
            "{}",
            reply.body
        );
    }
    // Health only (probes name the pod's address): "ok" tells a page nothing.
    let reply = db
        .from_a_page(
            reqwest::Method::GET,
            paths::HEALTHZ,
            &foreign,
            None,
            "text/plain",
            "",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    // Its own loopback names, any port: served.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let reply = db
            .from_a_page(
                reqwest::Method::GET,
                paths::STATE,
                &host,
                None,
                "text/plain",
                "",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
    }
    // A page on another site reading /state by the right name: its Origin gives it away.
    let reply = db
        .from_a_page(
            reqwest::Method::GET,
            paths::STATE,
            &format!("127.0.0.1:{port}"),
            Some("http://evil.example"),
            "text/plain",
            "",
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[tokio::test]
async fn a_service_behind_a_gateway_lists_the_names_it_is_reached_by() {
    let db = MockDb::start_with(&scratch_dir("mock_db_mcp/host-list"), |o| {
        o.allowed_hosts("mock-db-mcp.hitl-lab.svc.cluster.local:8080,hitl-gateway")
    })
    .await
    .unwrap();
    for (host, status) in [
        ("mock-db-mcp.hitl-lab.svc.cluster.local:8080", 200),
        ("hitl-gateway", 200),
        ("hitl-gateway:80", 200),
        ("mock-db-mcp.hitl-lab.svc.cluster.local:9090", 421),
        ("localhost", 421),
    ] {
        let reply = db
            .from_a_page(
                reqwest::Method::GET,
                paths::STATE,
                host,
                None,
                "text/plain",
                "",
            )
            .await
            .unwrap();
        assert_eq!(reply.status, status, "{host}: {}", reply.body);
    }
}

// ---------- stateless transport ----------

#[tokio::test]
async fn independent_posts_work_without_a_session() {
    let db = start_unapproved("stateless").await;
    let post = |path: &'static str, message: Value| {
        let db = &db;
        async move {
            let resp = db.post_jsonrpc(path, &message).await.unwrap();
            assert_eq!(resp.status, 200, "{message} → {}", resp.body);
            assert_eq!(resp.content_type, "application/json", "{message}");
            resp.json().unwrap()
        }
    };

    let init = post(
        paths::PUBLIC_MCP,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "gateway-probe", "version": "1"}}}),
    )
    .await;
    assert_eq!(init["result"]["serverInfo"]["name"], "mock-db-mcp/public");

    // No session id, no initialized notification: each request stands alone.
    let list = post(
        paths::PRIVILEGED_MCP,
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(list["result"]["tools"][0]["name"], "run_migration");

    let count = post(
        paths::PUBLIC_MCP,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "cluster_db_query", "arguments": {"sql": "SELECT COUNT(*) AS n FROM customers"}}}),
    )
    .await;
    assert_eq!(
        count["result"]["structuredContent"]["rows"],
        json!([{ "n": 3 }])
    );

    let migrate = post(
        paths::PRIVILEGED_MCP,
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "run_migration", "arguments": {"version": "v4"}}}),
    )
    .await;
    assert_eq!(migrate["result"]["isError"], false);
    assert_eq!(db.state().await.unwrap().schema_version, "v4");
}

#[tokio::test]
async fn a_per_request_client_works_too() {
    // The 2026-07-28 lifecycle: `server/discover`, then self-contained requests carrying
    // their protocol metadata; no handshake state on the server at all.
    let db = start("discover_client").await;
    let client = db
        .connect_with(
            paths::PUBLIC_MCP,
            &[("x-user-id", "bob")],
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert_eq!(names, ["cluster_db_query", "truncate_table"]);
    let count = query(&client, "SELECT COUNT(*) AS n FROM orders").await;
    assert_eq!(count["rows"], json!([{ "n": 3 }]));
    tool_ok(
        &client,
        tools::TRUNCATE_TABLE,
        json!({ "table": "customers" }),
    )
    .await;
    let state = db.state().await.unwrap();
    assert_eq!(state.audit[0].caller["x-user-id"], "bob");
}

// ---------- persistence and reset ----------

#[tokio::test]
async fn a_file_database_survives_a_restart() {
    let dir = scratch_dir("mock_db_mcp/persistence");
    let path = dir.join("orders.db");
    let mut db = MockDb::start_with(&dir, |o| unapproved(o).db_path(&path))
        .await
        .unwrap();
    {
        let public = db.public("alice").await.unwrap();
        let privileged = db.privileged("alice").await.unwrap();
        tool_ok(
            &public,
            tools::TRUNCATE_TABLE,
            json!({ "table": "customers" }),
        )
        .await;
        tool_ok(
            &privileged,
            tools::RUN_MIGRATION,
            json!({ "version": "v4" }),
        )
        .await;
    }

    db.restart().await.unwrap();

    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v4");
    assert_eq!(
        counts(&state),
        [("customers", 0), ("orders", 3), ("refunds", 0)]
    );
    // The audit log belongs to the process, not the file.
    assert!(state.audit.is_empty());
}

#[tokio::test]
async fn reset_is_off_unless_enabled() {
    let db = start("reset_off").await;
    let (status, body) = db.reset("scene-runner").await.unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("--enable-reset"), "{body}");
    assert_untouched(&db).await;
}

#[tokio::test]
async fn reset_restores_the_seed_and_is_audited() {
    let dir = scratch_dir("mock_db_mcp/reset_on");
    let db = MockDb::start_with(&dir, |o| unapproved(o).reset_token("the-labs-own-token"))
        .await
        .unwrap();
    let public = db.public("alice").await.unwrap();
    let privileged = db.privileged("alice").await.unwrap();
    tool_ok(&public, tools::TRUNCATE_TABLE, json!({ "table": "orders" })).await;
    tool_ok(
        &privileged,
        tools::RUN_MIGRATION,
        json!({ "version": "v4" }),
    )
    .await;

    let (status, body) = db.reset("scene-runner").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let answered: State = serde_json::from_str(&body).unwrap();
    let state = db.state().await.unwrap();
    assert_eq!(answered, state);
    assert_eq!(state.schema_version, "v2");
    assert_eq!(counts(&state), SEED_COUNTS);
    let tools_audited: Vec<&str> = state.audit.iter().map(|e| e.tool.as_str()).collect();
    assert_eq!(tools_audited, ["truncate_table", "run_migration", "reset"]);
    assert_eq!(state.audit[2].caller["x-user-id"], "scene-runner");

    // Queries after a reset see the fresh schema.
    let orders = query(&public, "SELECT COUNT(*) AS n FROM orders").await;
    assert_eq!(
        (&orders["rows"][0]["n"], &orders["schema_version"]),
        (&json!(3), &json!("v2"))
    );
}

// ---------- approvals: /privileged/mcp executes only what the gate approved ----------

fn migration_call(id: u64, version: &str) -> String {
    json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": { "name": tools::RUN_MIGRATION, "arguments": { "version": version } }
    })
    .to_string()
}

/// POST `body` straight to `/privileged/mcp` with `token` (if any): the JSON-RPC answer.
async fn direct(db: &MockDb, body: &str, token: Option<&str>) -> Value {
    let headers: Vec<(&str, &str)> = token
        .map(|t| vec![(hitl_wire::approval::HEADER, t)])
        .unwrap_or_default();
    let reply = db
        .post_with(paths::PRIVILEGED_MCP, body.to_owned(), &headers)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.json().unwrap()
}

/// The answer is a refusal naming `check`; returns its message.
fn refused(answer: &Value, check: &str) -> String {
    assert_eq!(
        answer["error"]["code"],
        hitl_wire::approval::REFUSED_CODE,
        "not a refusal: {answer}"
    );
    assert_eq!(answer["error"]["data"]["check"], check, "{answer}");
    answer["error"]["message"].as_str().unwrap().to_owned()
}

/// The checks the audit recorded as refusals, in order; asserts nothing ran.
async fn refusals(db: &MockDb) -> Vec<String> {
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v2", "nothing may have run");
    assert!(
        state.audit.iter().all(|e| !e.executed()),
        "{:?}",
        state.audit
    );
    state
        .audit
        .iter()
        .filter_map(|e| e.refused.clone())
        .collect()
}

#[tokio::test]
async fn a_direct_tools_call_without_approval_is_refused_and_audited() {
    let db = start("approval_missing").await;
    let answer = direct(&db, &migration_call(1, "v3"), None).await;
    let message = refused(&answer, "missing");
    assert!(message.contains("x-hitl-approval"), "{message}");
    assert!(message.contains("nothing was executed"), "{message}");
    assert_eq!(refusals(&db).await, ["missing"]);
    let state = db.state().await.unwrap();
    assert_eq!(state.audit[0].tool, tools::RUN_MIGRATION);
    assert_eq!(state.audit[0].args, json!({ "version": "v3" }));

    // Housekeeping still works without a token: the handshake and discovery.
    let privileged = db.privileged("alice").await.unwrap();
    assert_eq!(privileged.list_all_tools().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_approval_runs_exactly_its_bytes_exactly_once() {
    let db = start("approval_once").await;
    let approved = migration_call(1, "v3");
    let token = db.approve("call-1", approved.as_bytes(), tools::RUN_MIGRATION);

    // The same JSON with one more space: other bytes, so not what was approved.
    let respaced = approved.replacen(':', ": ", 1);
    let message = refused(&direct(&db, &respaced, Some(&token)).await, "body-sha256");
    assert!(message.contains("approval is for other bytes"), "{message}");
    // Another call entirely under the same token.
    refused(
        &direct(&db, &migration_call(1, "v4"), Some(&token)).await,
        "body-sha256",
    );
    assert_eq!(refusals(&db).await, ["body-sha256", "body-sha256"]);

    // The approved bytes run, once, recorded with their approval.
    let answer = direct(&db, &approved, Some(&token)).await;
    assert_eq!(
        answer["result"]["structuredContent"]["to"], "v3",
        "{answer}"
    );
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v3");
    let ran = state.audit.last().unwrap();
    assert!(ran.executed());
    assert_eq!(ran.approval_id.as_deref(), Some("call-1"));

    // A replay of the same token and bytes: refused, nothing runs again.
    refused(&direct(&db, &approved, Some(&token)).await, "replayed");
    let state = db.state().await.unwrap();
    assert_eq!(
        state.audit.iter().filter(|e| e.executed()).count(),
        1,
        "{:?}",
        state.audit
    );
    assert_eq!(
        state.audit.last().unwrap().refused.as_deref(),
        Some("replayed")
    );
}

#[tokio::test]
async fn expired_forged_and_misdirected_approvals_are_refused() {
    use hitl_wire::approval::{Claims, Signer};
    let db = start("approval_forged").await;
    let body = migration_call(1, "v3");
    let fresh = hitl_lab_tests::mock_db::claims("call-1", body.as_bytes(), tools::RUN_MIGRATION);
    let now = fresh.iat;
    let sign = |claims: Claims| db.signer.sign(&claims);

    let cases = [
        // Expired a minute ago (well past the clock-skew allowance).
        (
            sign(Claims {
                iat: now - 90,
                exp: now - 60,
                ..fresh.clone()
            }),
            "expired",
        ),
        // Issued in the future: a clock too far ahead, or a token made to outlive its TTL.
        (
            sign(Claims {
                iat: now + 30,
                exp: now + 60,
                ..fresh.clone()
            }),
            "not-yet-valid",
        ),
        // Living longer than the 60 s the verifier allows.
        (
            sign(Claims {
                exp: now + 3600,
                ..fresh.clone()
            }),
            "lifetime",
        ),
        // Approved for another tool.
        (
            sign(Claims {
                tool: tools::TRUNCATE_TABLE.into(),
                ..fresh.clone()
            }),
            "tool",
        ),
        // Signed by a key that is not the gate's.
        (Signer::generate().unwrap().sign(&fresh), "signature"),
        ("v1.e30.AAAA".to_owned(), "malformed"),
    ];
    for (token, check) in &cases {
        refused(&direct(&db, &body, Some(token)).await, check);
    }
    let expected: Vec<&str> = cases.iter().map(|(_, c)| *c).collect();
    assert_eq!(refusals(&db).await, expected);
}

#[tokio::test]
async fn the_public_server_never_needs_nor_honours_an_approval() {
    let db = start("approval_public").await;
    let body = migration_call(1, "v3");
    let token = db.approve("call-1", body.as_bytes(), tools::RUN_MIGRATION);
    let reply = db
        .post_with(
            paths::PUBLIC_MCP,
            body,
            &[(hitl_wire::approval::HEADER, token.as_str())],
        )
        .await
        .unwrap();
    let answer = reply.json().unwrap();
    assert_eq!(answer["error"]["code"], -32602, "unknown tool: {answer}");
    // Its own tools need none (tier 1 is the agent's).
    let public = db.public("alice").await.unwrap();
    tool_ok(&public, tools::TRUNCATE_TABLE, json!({ "table": "orders" }))
        .await
        .to_string();
    let state = db.state().await.unwrap();
    assert_eq!(state.schema_version, "v2");
    assert_eq!(
        state
            .audit
            .iter()
            .map(|e| e.tool.as_str())
            .collect::<Vec<_>>(),
        [tools::TRUNCATE_TABLE]
    );
}

#[tokio::test]
async fn without_a_verifying_key_it_refuses_to_start() {
    let dir = scratch_dir("mock_db_mcp/no_key");
    let options = Options::new(hitl_lab::net::free_port().unwrap());
    let spec = hitl_lab::components::mock_db::spec(&options, &dir)
        .unwrap()
        .ready_timeout(std::time::Duration::from_secs(10));
    let Err(err) = hitl_lab::proc::Running::start(spec).await else {
        panic!("must not start without a key")
    };
    let log = std::fs::read_to_string(dir.join("mock-db-mcp.log")).unwrap_or_default();
    assert!(
        format!("{err:#}{log}").contains("no approval verifying key"),
        "{err:#}\n{log}"
    );
}
