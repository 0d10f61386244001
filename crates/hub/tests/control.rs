//! The control plane against a real in-process hub (127.0.0.1:0) with a real
//! SQLite database in a temporary directory. Every JSON response is
//! validated against the OpenAPI document (`bulwark_api::OPENAPI`), with the
//! schema the document names for its path, method and status.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{path::Path, sync::Arc, time::Duration};

use bulwark_hub::{ControlConfig, ControlPlan, HubConfig, TokenKind};
use common::{req, Resp, Server};
use serde_json::{json, Value};
use tokio::sync::watch;

const CONFIG: &str = r#"
[repositories.main]
url = "/tmp/bulwark-control-test-repo"
password_file = "/tmp/bulwark-control-test.pass"

[hosts.nas]
[hosts.web]

[jobs.photos]
repository = "main"
host = "nas"
paths = ["/srv/photos"]

[jobs.site]
repository = "main"
host = "web"
paths = ["/var/www"]

[maintenance.prune]
host = "nas"
repository = "main"

[maintenance.prune.retention]
keep_daily = 7

[pings.cron]
uuid = "0123456789abcdef0123"
period = "1d"
grace = "1h"
"#;

const PING_UUID: &str = "0123456789abcdef0123";

fn plan_of(text: &str) -> ControlPlan {
    let cfg = bulwark_config::parse(text, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    ControlPlan::from_config(&cfg, text)
}

/// A hub with the control plane, its tokens and the plan sender.
struct Hub {
    server: Server,
    state: std::path::PathBuf,
    plan: watch::Sender<Arc<ControlPlan>>,
    admin: String,
    nas: String,
    web: String,
    _dir: tempfile::TempDir,
}

fn hub_config(
    dir: &Path,
    state: &Path,
    plan: ControlPlan,
) -> (HubConfig, watch::Sender<Arc<ControlPlan>>) {
    let mut c = common::config(dir);
    let (control, tx) = ControlConfig::new(state, plan);
    c.control = Some(control);
    c.shutdown_grace = Duration::from_secs(20);
    (c, tx)
}

async fn start_with(text: &str) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let (_, nas) = bulwark_hub::create_token(&state, TokenKind::Host("nas".into())).unwrap();
    let (_, web) = bulwark_hub::create_token(&state, TokenKind::Host("web".into())).unwrap();
    let (c, plan) = hub_config(dir.path(), &state, plan_of(text));
    let server = Server::start(c).await;
    Hub {
        server,
        state,
        plan,
        admin,
        nas,
        web,
        _dir: dir,
    }
}

async fn start() -> Hub {
    start_with(CONFIG).await
}

// ------------------------------------------------------ OpenAPI validation

fn doc() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(bulwark_api::OPENAPI).unwrap())
}

fn template_of(path: &str) -> Option<&'static str> {
    let path = path.split('?').next().unwrap();
    let segs: Vec<&str> = path[1..].split('/').collect();
    bulwark_hub::control_routes().map(|(_, t)| t).find(|t| {
        let ts: Vec<&str> = t[1..].split('/').collect();
        ts.len() == segs.len()
            && ts
                .iter()
                .zip(&segs)
                .all(|(t, s)| t.starts_with('{') && !s.is_empty() || t == s)
    })
}

fn validate(schema: &Value, instance: &Value, what: &str) {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc()["components"].clone(),
        "allOf": [schema],
    });
    let v = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap();
    let errors: Vec<String> = v
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: response does not match the OpenAPI schema: {errors:?}\n{instance:#}"
    );
}

/// Checks a response against the document: its status must be documented
/// for the path and method, and a JSON body must match the named schema.
fn check(method: &str, path: &str, r: &Resp) {
    let what = format!("{method} {path} → {}", r.status);
    let is_json = r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    if r.status >= 400 {
        assert!(is_json, "{what}: error bodies are JSON: {:?}", r.text());
    }
    let op = template_of(path).and_then(|t| doc()["paths"][t].get(method.to_ascii_lowercase()));
    match op {
        Some(op) if r.status != 405 => {
            let resp = op["responses"].get(r.status.to_string());
            assert!(resp.is_some(), "{what}: status not documented");
            if method == "HEAD" || r.status == 204 {
                return;
            }
            let content = &resp.unwrap()["content"];
            if is_json {
                let schema = &content["application/json"]["schema"];
                assert!(!schema.is_null(), "{what}: JSON body not documented");
                let body: Value = serde_json::from_slice(&r.body)
                    .unwrap_or_else(|e| panic!("{what}: bad JSON: {e}"));
                validate(schema, &body, &what);
            } else {
                let ct = r.header("content-type").unwrap_or_default();
                let ct = ct.split(';').next().unwrap();
                assert!(
                    !content[ct].is_null(),
                    "{what}: content type {ct} not documented"
                );
            }
        }
        _ => {
            // unknown path or wrong method: still an ApiError
            if r.status >= 400 {
                let body: Value = serde_json::from_slice(&r.body).unwrap();
                validate(
                    &json!({"$ref": "#/components/schemas/ApiError"}),
                    &body,
                    &what,
                );
            }
        }
    }
}

async fn call(h: &Hub, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> Resp {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let r = req(h.server.addr, method, path, None, &headers, body).await;
    check(method, path, &r);
    r
}

fn js(r: &Resp) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

fn report(host: &str, job: &str, id: &str) -> Value {
    json!({
        "id": id, "host": host, "job": job, "kind": "backup", "trigger": "schedule",
        "started": "2026-11-23T02:00:00Z", "finished": "2026-11-23T02:03:10Z", "status": "success",
        "exit_code": 0,
        "snapshot": {"id": "a".repeat(64), "time": "2026-11-23T02:03:00Z", "repository": "main",
                     "hostname": host, "paths": ["/srv/photos"], "tags": []},
        "stats": {"files_new": 3, "bytes_added": 1000},
        "skipped": [{"path": "/srv/photos/locked", "error": "permission denied"}],
        "skipped_count": 1,
        "errors": []
    })
}

const ID1: &str = "0123456789abcdef0123456789abcdef";
const ID2: &str = "fedcba9876543210fedcba9876543210";

async fn run_count(h: &Hub) -> usize {
    let r = call(h, "GET", "/api/v1/runs?limit=1000", Some(&h.admin), b"").await;
    assert_eq!(r.status, 200);
    js(&r).as_array().unwrap().len()
}

// ------------------------------------------------------------------- tests

#[tokio::test]
async fn reports_are_stored_exactly_once_and_checked() {
    let h = start().await;
    let body = serde_json::to_vec(&report("nas", "photos", ID1)).unwrap();
    let r = call(&h, "POST", "/api/v1/agent/runs", Some(&h.nas), &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let stored = js(&r);
    assert_eq!(stored["duplicate"], false);
    let run_id = stored["run"].as_i64().unwrap();
    let r = call(&h, "POST", "/api/v1/agent/runs", Some(&h.nas), &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(js(&r), json!({"run": run_id, "duplicate": true}));
    assert_eq!(run_count(&h).await, 1);

    let mut wrong_types = report("nas", "photos", ID2);
    wrong_types["started"] = json!(12);
    let mut bad_id = report("nas", "photos", ID2);
    bad_id["id"] = json!("XYZ");
    let mut backwards = report("nas", "photos", ID2);
    backwards["finished"] = json!("2026-11-23T01:00:00Z");
    let huge = vec![b' '; bulwark_api::MAX_BODY + 1];
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "another host's report",
            Some(&h.web),
            serde_json::to_vec(&report("nas", "photos", ID2)).unwrap(),
            403,
        ),
        (
            "a job the host doesn't have",
            Some(&h.nas),
            serde_json::to_vec(&report("nas", "site", ID2)).unwrap(),
            404,
        ),
        (
            "no token",
            None,
            serde_json::to_vec(&report("nas", "photos", ID2)).unwrap(),
            401,
        ),
        (
            "bad token",
            Some("bwk_0000"),
            serde_json::to_vec(&report("nas", "photos", ID2)).unwrap(),
            401,
        ),
        (
            "admin token",
            Some(&h.admin),
            serde_json::to_vec(&report("nas", "photos", ID2)).unwrap(),
            403,
        ),
        ("malformed JSON", Some(&h.nas), b"{\"id\": ".to_vec(), 400),
        (
            "wrong types",
            Some(&h.nas),
            serde_json::to_vec(&wrong_types).unwrap(),
            400,
        ),
        (
            "invalid id",
            Some(&h.nas),
            serde_json::to_vec(&bad_id).unwrap(),
            400,
        ),
        (
            "finished before started",
            Some(&h.nas),
            serde_json::to_vec(&backwards).unwrap(),
            400,
        ),
        ("body over MAX_BODY", Some(&h.nas), huge, 413),
    ];
    for (name, token, body, want) in cases {
        let r = call(&h, "POST", "/api/v1/agent/runs", token, &body).await;
        assert_eq!(r.status, want, "{name}: {}", r.text());
        if want == 401 {
            assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{name}");
        }
        if want == 400 {
            assert!(!js(&r)["error"].as_str().unwrap().is_empty());
        }
    }
    assert_eq!(run_count(&h).await, 1, "nothing stored on errors");

    // reads
    let r = call(
        &h,
        "GET",
        &format!("/api/v1/runs/{run_id}"),
        Some(&h.nas),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(js(&r)["id"], ID1);
    assert_eq!(js(&r)["run"], run_id);
    assert_eq!(
        call(
            &h,
            "GET",
            &format!("/api/v1/runs/{run_id}"),
            Some(&h.web),
            b""
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/runs/abc", Some(&h.admin), b"")
            .await
            .status,
        400
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/runs/999", Some(&h.admin), b"")
            .await
            .status,
        404
    );
    let r = call(
        &h,
        "GET",
        "/api/v1/runs?host=nas&job=photos&status=success&limit=5",
        Some(&h.admin),
        b"",
    )
    .await;
    assert_eq!(js(&r).as_array().unwrap().len(), 1);
    let r = call(&h, "GET", "/api/v1/runs?status=failed", Some(&h.admin), b"").await;
    assert!(js(&r).as_array().unwrap().is_empty());
    assert_eq!(
        call(&h, "GET", "/api/v1/runs?status=weird", Some(&h.admin), b"")
            .await
            .status,
        400
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/runs?limit=0", Some(&h.admin), b"")
            .await
            .status,
        400
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/runs?host=nas", Some(&h.web), b"")
            .await
            .status,
        403
    );
    let r = call(&h, "GET", "/api/v1/runs", Some(&h.web), b"").await;
    assert!(
        js(&r).as_array().unwrap().is_empty(),
        "host tokens see only their own runs"
    );
    let r = call(
        &h,
        "GET",
        "/api/v1/snapshots?job=photos",
        Some(&h.admin),
        b"",
    )
    .await;
    let snaps = js(&r);
    assert_eq!(snaps[0]["id"], "a".repeat(64));
    assert_eq!(snaps[0]["run"], run_id);
    assert_eq!(snaps[0]["host"], "nas");

    // status: the job's last run and state
    let r = call(&h, "GET", "/api/v1/jobs/photos", Some(&h.nas), b"").await;
    assert_eq!(r.status, 200);
    let job = js(&r);
    assert_eq!(job["state"], "ok");
    assert_eq!(job["last_run"]["run"], run_id);
    assert_eq!(job["last_success"], "2026-11-23T02:03:10Z");
    assert_eq!(
        call(&h, "GET", "/api/v1/jobs/site", Some(&h.nas), b"")
            .await
            .status,
        403
    );
    assert_eq!(
        call(&h, "GET", "/api/v1/jobs/nope", Some(&h.admin), b"")
            .await
            .status,
        404
    );
    h.server.stop().await;
}

#[tokio::test]
async fn auth_scopes_and_errors() {
    let h = start().await;
    let admin_only = [("POST", "/api/v1/jobs/photos/trigger")];
    for (m, p) in admin_only {
        assert_eq!(
            call(&h, m, p, Some(&h.nas), b"").await.status,
            403,
            "{m} {p}"
        );
    }
    for (m, p) in [
        ("GET", "/api/v1/status"),
        ("GET", "/api/v1/hosts"),
        ("GET", "/api/v1/jobs"),
        ("GET", "/api/v1/runs"),
        ("GET", "/api/v1/snapshots"),
        ("GET", "/api/v1/agent/config"),
        ("POST", "/api/v1/agent/poll"),
    ] {
        let r = call(&h, m, p, None, b"").await;
        assert_eq!(r.status, 401, "{m} {p}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // host scope: only its own host
    let r = call(&h, "GET", "/api/v1/status", Some(&h.nas), b"").await;
    let st = js(&r);
    assert!(st["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["name"] == "nas"));
    assert!(st["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["host"] == "nas"));
    assert!(st["pings"].as_array().unwrap().is_empty());
    let r = call(&h, "GET", "/api/v1/status", Some(&h.admin), b"").await;
    let st = js(&r);
    assert_eq!(st["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(st["pings"][0]["state"], "new");
    assert_eq!(
        call(&h, "GET", "/api/v1/hosts/web", Some(&h.nas), b"")
            .await
            .status,
        403
    );
    let r = call(&h, "GET", "/api/v1/hosts/nas", Some(&h.nas), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(js(&r)["jobs"], json!(["photos", "prune"]));
    assert_eq!(
        call(&h, "GET", "/api/v1/hosts/zzz", Some(&h.admin), b"")
            .await
            .status,
        404
    );
    // admin tokens can't act as agents
    assert_eq!(
        call(&h, "GET", "/api/v1/agent/config", Some(&h.admin), b"")
            .await
            .status,
        403
    );
    // unknown paths and methods
    let r = call(&h, "GET", "/api/v1/nothing", Some(&h.admin), b"").await;
    assert_eq!(r.status, 404);
    let r = call(&h, "DELETE", "/api/v1/status", Some(&h.admin), b"").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    // the document itself, without a token
    let r = call(&h, "GET", "/api/v1/openapi.json", None, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(js(&r)["openapi"], "3.1.0");
    // a revoked token stops working
    let tokens = bulwark_hub::list_tokens(&h.state).unwrap();
    let web_id = tokens
        .iter()
        .find(|t| t.kind == TokenKind::Host("web".into()))
        .unwrap()
        .id;
    assert_eq!(
        call(&h, "GET", "/api/v1/status", Some(&h.web), b"")
            .await
            .status,
        200
    );
    assert!(bulwark_hub::revoke_token(&h.state, web_id).unwrap());
    assert_eq!(
        call(&h, "GET", "/api/v1/status", Some(&h.web), b"")
            .await
            .status,
        401
    );
    // the names api and ping never reach the repository server
    let r = req(
        h.server.addr,
        "POST",
        "/api/?create=true",
        Some(("alice", "pw-alice")),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let r = req(
        h.server.addr,
        "POST",
        "/ping/?create=true",
        Some(("alice", "pw-alice")),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(!h.server.data.join("api").exists() && !h.server.data.join("ping").exists());
    h.server.stop().await;
}

#[tokio::test]
async fn repeated_bad_tokens_are_rate_limited() {
    let h = start().await;
    let mut last = 0;
    for _ in 0..12 {
        last = call(&h, "GET", "/api/v1/status", Some("bwk_wrong"), b"")
            .await
            .status;
    }
    assert_eq!(last, 429);
    h.server.stop().await;
}

#[tokio::test]
async fn trigger_reaches_the_poll_once() {
    let h = start().await;
    let r = call(&h, "POST", "/api/v1/jobs/nope/trigger", Some(&h.admin), b"").await;
    assert_eq!(r.status, 404);
    let r = call(
        &h,
        "POST",
        "/api/v1/jobs/photos/trigger",
        Some(&h.admin),
        b"",
    )
    .await;
    assert_eq!(r.status, 202);
    let t = js(&r);
    assert_eq!(
        (t["host"].as_str(), t["job"].as_str()),
        (Some("nas"), Some("photos"))
    );
    // the other host gets nothing
    let r = call(&h, "POST", "/api/v1/agent/poll", Some(&h.web), b"{}").await;
    assert!(js(&r)["commands"].as_array().unwrap().is_empty());
    let poll = json!({"agent_version": "0.1.0", "running": [], "next_runs": [{"job": "photos", "at": "2030-01-01T02:00:00Z"}]});
    let body = serde_json::to_vec(&poll).unwrap();
    let r = call(&h, "POST", "/api/v1/agent/poll?wait=0", Some(&h.nas), &body).await;
    assert_eq!(r.status, 200);
    let p = js(&r);
    assert_eq!(p["commands"].as_array().unwrap().len(), 1);
    assert_eq!(p["commands"][0]["id"], t["command"]);
    assert_eq!(p["commands"][0]["job"], "photos");
    assert!(p["config_version"].is_string());
    let r = call(&h, "POST", "/api/v1/agent/poll", Some(&h.nas), &body).await;
    assert!(
        js(&r)["commands"].as_array().unwrap().is_empty(),
        "delivered once"
    );
    // the poll's state shows up in status
    let r = call(&h, "GET", "/api/v1/hosts/nas", Some(&h.admin), b"").await;
    assert_eq!(js(&r)["online"], true);
    assert_eq!(js(&r)["agent_version"], "0.1.0");
    let r = call(&h, "GET", "/api/v1/jobs/photos", Some(&h.admin), b"").await;
    assert_eq!(js(&r)["next_run"], "2030-01-01T02:00:00Z");
    // bad polls
    assert_eq!(
        call(&h, "POST", "/api/v1/agent/poll?wait=x", Some(&h.nas), b"{}")
            .await
            .status,
        400
    );
    assert_eq!(
        call(&h, "POST", "/api/v1/agent/poll", Some(&h.nas), b"[1]")
            .await
            .status,
        400
    );

    // a waiting poll gets a trigger that arrives while it waits
    let addr = h.server.addr;
    let nas = h.nas.clone();
    let waiting = tokio::spawn(async move {
        let auth = format!("Bearer {nas}");
        req(
            addr,
            "POST",
            "/api/v1/agent/poll?wait=30",
            None,
            &[("Authorization", &auth)],
            b"{}",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = call(
        &h,
        "POST",
        "/api/v1/jobs/prune/trigger",
        Some(&h.admin),
        b"",
    )
    .await;
    assert_eq!(r.status, 202);
    let r = waiting.await.unwrap();
    check("POST", "/api/v1/agent/poll", &r);
    let p = js(&r);
    assert_eq!(p["commands"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["commands"][0]["job"], "prune");
    h.server.stop().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_long_polls() {
    let h = start().await;
    let addr = h.server.addr;
    let nas = h.nas.clone();
    let waiting = tokio::spawn(async move {
        let auth = format!("Bearer {nas}");
        req(
            addr,
            "POST",
            "/api/v1/agent/poll?wait=60",
            None,
            &[("Authorization", &auth)],
            b"{}",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(10), h.server.stop())
        .await
        .expect("shutdown in time");
    let r = waiting.await.unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn leases() {
    // both hosts' jobs use the same repository on a hub (leases are granted
    // only on the repositories of a host's own jobs)
    let h = start_with(&CONFIG.replace("/tmp/bulwark-control-test-repo", "rest:https://hub/main"))
        .await;
    let lease = |kind: &str, job: &str| {
        serde_json::to_vec(
            &json!({"repository": "rest:https://hub/main", "kind": kind, "job": job}),
        )
        .unwrap()
    };
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease("backup", "photos"),
    )
    .await;
    assert_eq!(r.status, 201);
    let b1 = js(&r)["id"].as_str().unwrap().to_owned();
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.web),
        &lease("backup", "site"),
    )
    .await;
    assert_eq!(r.status, 201, "backups share");
    let b2 = js(&r)["id"].as_str().unwrap().to_owned();
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease("maintenance", "prune"),
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(js(&r)["retry_after"].as_u64().unwrap() > 0);
    assert!(r.header("retry-after").is_some());
    // writer preference: the waiting maintenance keeps new backups out
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.web),
        &lease("backup", "site"),
    )
    .await;
    assert_eq!(r.status, 409);
    // only the holder releases
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/api/v1/agent/leases/{b1}"),
            Some(&h.web),
            b""
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/api/v1/agent/leases/{b1}"),
            Some(&h.nas),
            b""
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/api/v1/agent/leases/{b2}"),
            Some(&h.web),
            b""
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/api/v1/agent/leases/{b2}"),
            Some(&h.web),
            b""
        )
        .await
        .status,
        404
    );
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease("maintenance", "prune"),
    )
    .await;
    assert_eq!(r.status, 201, "granted once the backups are gone");
    let m = js(&r)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.web),
            &lease("backup", "site")
        )
        .await
        .status,
        409
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.web),
            &lease("maintenance", "x")
        )
        .await
        .status,
        409
    );
    assert_eq!(
        call(
            &h,
            "DELETE",
            &format!("/api/v1/agent/leases/{m}"),
            Some(&h.nas),
            b""
        )
        .await
        .status,
        204
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.web),
            &lease("backup", "site")
        )
        .await
        .status,
        201
    );
    // bad requests
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.web),
            br#"{"repository":"r","kind":"other","job":"x"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.web),
            br#"{"repository":"","kind":"backup","job":"x"}"#
        )
        .await
        .status,
        400
    );
    assert_eq!(
        call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.admin),
            &lease("backup", "x")
        )
        .await
        .status,
        403
    );
    h.server.stop().await;
}

#[tokio::test]
async fn pings() {
    let h = start().await;
    let state = |r: &Resp| js(r)["pings"][0].clone();
    let p = format!("/ping/{PING_UUID}");
    let cases: Vec<(String, &str, &str, Option<i64>)> = vec![
        (format!("{p}/start"), "GET", "started", None),
        (p.clone(), "GET", "up", None),
        (format!("{p}/fail"), "POST", "down", None),
        (format!("{p}/0"), "HEAD", "up", Some(0)),
        (format!("{p}/3"), "POST", "down", Some(3)),
        (p.clone(), "POST", "up", Some(3)),
    ];
    for (path, method, want, exit) in cases {
        let r = call(&h, method, &path, None, b"some output").await;
        assert_eq!(r.status, 200, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(r.text(), "OK");
            assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        }
        let s = state(&call(&h, "GET", "/api/v1/status", Some(&h.admin), b"").await);
        assert_eq!(s["state"], want, "after {method} {path}: {s}");
        assert_eq!(s["last_exit"].as_i64(), exit, "after {path}");
    }
    // a big body is truncated, not refused
    let big = vec![b'x'; 50 * 1024];
    assert_eq!(call(&h, "POST", &p, None, &big).await.status, 200);
    for bad in [
        "/ping/unknown-uuid-000000",
        "/ping/unknown-uuid-000000/fail",
        &format!("{p}/256"),
        &format!("{p}/x"),
    ] {
        assert_eq!(call(&h, "GET", bad, None, b"").await.status, 404, "{bad}");
    }
    assert_eq!(call(&h, "PUT", &p, None, b"").await.status, 405);
    h.server.stop().await;
}

#[tokio::test]
async fn a_missed_schedule_makes_the_job_late() {
    let text = CONFIG.replace(
        "[maintenance.prune]",
        "[jobs.fast]\nrepository = \"main\"\nhost = \"nas\"\npaths = [\"/x\"]\nschedule = \"*:*:0/2\"\nlate_after = \"1s\"\n\n[maintenance.prune]",
    );
    let h = start_with(&text).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = call(&h, "GET", "/api/v1/jobs/fast", Some(&h.admin), b"").await;
        let j = js(&r);
        if j["state"] == "late" {
            assert!(j["late_since"].is_string());
            assert_eq!(j["schedule"], "*:*:0/2");
            break;
        }
        assert_eq!(j["state"], "pending", "{j}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became late: {j}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = call(&h, "GET", "/api/v1/status", Some(&h.admin), b"").await;
    assert!(js(&r)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["name"] == "fast" && j["state"] == "late"));
    // unscheduled jobs are never late
    let r = call(&h, "GET", "/api/v1/jobs/photos", Some(&h.admin), b"").await;
    assert_eq!(js(&r)["state"], "pending");
    h.server.stop().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let (_, nas) = bulwark_hub::create_token(&state, TokenKind::Host("nas".into())).unwrap();
    let (c, _tx) = hub_config(dir.path(), &state, plan_of(CONFIG));
    let server = Server::start(c.clone()).await;
    let body = serde_json::to_vec(&report("nas", "photos", ID1)).unwrap();
    let auth = format!("Bearer {nas}");
    let r = req(
        server.addr,
        "POST",
        "/api/v1/agent/runs",
        None,
        &[("Authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(r.status, 201);
    server.stop().await;

    let server = Server::start(c).await;
    let auth = format!("Bearer {admin}");
    let r = req(
        server.addr,
        "GET",
        "/api/v1/runs",
        None,
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    check("GET", "/api/v1/runs", &r);
    assert_eq!(js(&r).as_array().unwrap().len(), 1);
    let auth = format!("Bearer {nas}");
    let r = req(
        server.addr,
        "POST",
        "/api/v1/agent/runs",
        None,
        &[("Authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "still a duplicate after the restart");
    server.stop().await;
}

#[tokio::test]
async fn agent_config_follows_the_plan() {
    let h = start().await;
    let r = call(&h, "GET", "/api/v1/agent/config", Some(&h.nas), b"").await;
    assert_eq!(r.status, 200);
    let c1 = js(&r);
    assert_eq!(c1["host"], "nas");
    assert!(c1["toml"].as_str().unwrap().contains("[jobs.photos]"));
    let v1 = c1["version"].as_str().unwrap().to_owned();

    // a waiting poll returns when the plan changes, with the new version
    let addr = h.server.addr;
    let nas = h.nas.clone();
    let waiting = tokio::spawn(async move {
        let auth = format!("Bearer {nas}");
        req(
            addr,
            "POST",
            "/api/v1/agent/poll?wait=30",
            None,
            &[("Authorization", &auth)],
            b"{}",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text2 = CONFIG.replace("/srv/photos", "/srv/pictures");
    h.plan.send(Arc::new(plan_of(&text2))).unwrap();
    let r = waiting.await.unwrap();
    check("POST", "/api/v1/agent/poll", &r);
    let v2 = js(&r)["config_version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2);
    let r = call(&h, "GET", "/api/v1/agent/config", Some(&h.nas), b"").await;
    assert_eq!(js(&r)["version"], v2.as_str());
    assert!(js(&r)["toml"].as_str().unwrap().contains("/srv/pictures"));

    // a host the plan doesn't serve
    let (_, other) = bulwark_hub::create_token(&h.state, TokenKind::Host("other".into())).unwrap();
    let r = call(&h, "GET", "/api/v1/agent/config", Some(&other), b"").await;
    assert_eq!(r.status, 404);
    assert!(js(&r)["hint"].is_string());
    // a host without planned jobs may report any job: it is learned
    let body = serde_json::to_vec(&report("other", "adhoc", ID2)).unwrap();
    assert_eq!(
        call(&h, "POST", "/api/v1/agent/runs", Some(&other), &body)
            .await
            .status,
        201
    );
    let r = call(&h, "GET", "/api/v1/jobs/adhoc", Some(&h.admin), b"").await;
    assert_eq!(js(&r)["state"], "ok");
    assert_eq!(js(&r)["host"], "other");
    assert_eq!(js(&r)["repository"], "main");
    h.server.stop().await;
}

#[tokio::test]
async fn without_a_state_dir_the_control_paths_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(common::config(dir.path())).await;
    for p in ["/api/v1/status", "/api/v1/openapi.json", "/ping/abc"] {
        let r = req(server.addr, "GET", p, None, &[], b"").await;
        assert_eq!(r.status, 404, "{p}");
        let e: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(e["hint"].as_str().unwrap().contains("--state"), "{e}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_database_from_the_future_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let db = rusqlite::Connection::open(state.join("control.sqlite")).unwrap();
    db.pragma_update(None, "user_version", 1000).unwrap();
    drop(db);
    let (c, _tx) = hub_config(dir.path(), &state, ControlPlan::empty());
    let err = Server::try_start(c).await.err().expect("refused");
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn the_schema_check_rejects_what_the_document_does_not_allow() {
    let status = json!({"$ref": "#/components/schemas/Status"});
    validate(
        &status,
        &json!({"generated": "2026-01-01T00:00:00Z", "hosts": [], "jobs": []}),
        "ok",
    );
    for bad in [
        json!({"hosts": [], "jobs": []}),
        json!({"generated": "yesterday", "hosts": [], "jobs": []}),
        json!({"generated": "2026-01-01T00:00:00Z", "hosts": [{"name": "x"}], "jobs": []}),
        json!({"generated": "2026-01-01T00:00:00Z", "hosts": [], "jobs": [{"name": "j", "host": "h", "kind": "backup", "state": "weird"}]}),
    ] {
        let r = std::panic::catch_unwind(|| validate(&status, &bad, "bad"));
        assert!(r.is_err(), "accepted {bad}");
    }
}

/// A host leases only the repositories its own jobs use (403 with a
/// sentence otherwise), a host the configuration names no jobs of gets no
/// leases (404: its agent runs on the repository's locks), and one host
/// holds at most 32 leases (429).
#[tokio::test]
async fn leases_only_on_own_repositories_and_capped_per_host() {
    let text = CONFIG
        .replace(
            "[jobs.site]\nrepository = \"main\"",
            "[repositories.web]\nurl = \"rest:https://hub:8000/web\"\npassword_file = \"/p\"\n\n[jobs.site]\nrepository = \"web\"",
        )
        .replace("/tmp/bulwark-control-test-repo", "rest:https://u:pw@HUB:8000/main/");
    let h = start_with(&text).await;
    let lease = |repo: &str| {
        serde_json::to_vec(&json!({"repository": repo, "kind": "backup", "job": "photos"})).unwrap()
    };
    // the agent's key for its own repository: no credentials, lower-case host
    let own = "rest:https://hub:8000/main";
    let web = "rest:https://hub:8000/web";
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease(web),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        js(&r)["error"]
            .as_str()
            .unwrap()
            .contains("no job of host nas uses the repository"),
        "{}",
        r.text()
    );
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease("rest:https://hub:8000/anything"),
    )
    .await;
    assert_eq!(r.status, 403);
    // web can lease its own
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.web),
        &lease(web),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // a host without jobs in the configuration
    let (_, ghost) = bulwark_hub::create_token(&h.state, TokenKind::Host("ghost".into())).unwrap();
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&ghost),
        &lease(own),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(js(&r)["error"]
        .as_str()
        .unwrap()
        .contains("names no jobs of host ghost"));
    // the per-host cap
    for i in 0..32 {
        let r = call(
            &h,
            "POST",
            "/api/v1/agent/leases",
            Some(&h.nas),
            &lease(own),
        )
        .await;
        assert_eq!(r.status, 201, "lease {i}: {}", r.text());
    }
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.nas),
        &lease(own),
    )
    .await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        js(&r)["error"]
            .as_str()
            .unwrap()
            .contains("already holds 32 leases"),
        "{}",
        r.text()
    );
    assert!(js(&r)["retry_after"].as_u64().unwrap() > 0);
    // the cap is per host: web still gets one
    let r = call(
        &h,
        "POST",
        "/api/v1/agent/leases",
        Some(&h.web),
        &lease(web),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    h.server.stop().await;
}

/// Run history older than `run_history` is pruned (at start, then hourly),
/// keeping each job's newest 20 runs.
#[tokio::test]
async fn run_history_is_pruned_after_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin).unwrap();
    let (_, nas) = bulwark_hub::create_token(&state, TokenKind::Host("nas".into())).unwrap();
    let (c, _tx) = hub_config(dir.path(), &state, plan_of(CONFIG));
    let server = Server::start(c.clone()).await;
    let auth = format!("Bearer {nas}");
    for i in 0..25 {
        let body = serde_json::to_vec(&report("nas", "photos", &format!("{i:032x}"))).unwrap();
        let r = req(
            server.addr,
            "POST",
            "/api/v1/agent/runs",
            None,
            &[("Authorization", &auth)],
            &body,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    server.stop().await;

    // restart with a retention every stored run is older than
    let mut c = c;
    c.control.as_mut().unwrap().run_history = Some(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let server = Server::start(c).await;
    let auth = format!("Bearer {admin}");
    let mut n = 0;
    for _ in 0..600 {
        let r = req(
            server.addr,
            "GET",
            "/api/v1/runs?limit=1000",
            None,
            &[("Authorization", &auth)],
            b"",
        )
        .await;
        n = js(&r).as_array().unwrap().len();
        if n == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(n, 20, "each job keeps its newest 20 runs");
    server.stop().await;
}
