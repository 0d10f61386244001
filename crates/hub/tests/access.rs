//! Access changes apply at once: after the hub reloads its configuration
//! (`[[hub.acl]]`) or its htpasswd file, the very next request is judged by
//! the new rules; no restart, no cached credentials outliving a removed
//! user.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{path::Path, sync::Arc, time::Duration};

use bulwark_hub::{ControlConfig, ControlPlan};
use common::{config, req, sha, Server};

const ALICE: Option<(&str, &str)> = Some(("alice", "pw-alice"));
const BOB: Option<(&str, &str)> = Some(("bob", "pw-bob"));

fn plan_with_acl(access: &str) -> ControlPlan {
    let text = format!(
        "[hub]\n\n[[hub.acl]]\nuser = \"alice\"\nrepo = \"alice\"\naccess = \"{access}\"\n"
    );
    let cfg = bulwark_config::parse(&text, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    ControlPlan::from_config(&cfg, &text)
}

async fn upload(server: &Server, who: Option<(&str, &str)>, data: &[u8]) -> String {
    let h = sha(data);
    let r = req(
        server.addr,
        "POST",
        &format!("/alice/data/{h}"),
        who,
        &[],
        data,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    h
}

/// `[[hub.acl]]` takes `modify` away from alice: her very next DELETE after
/// the reload is refused (403 with a sentence), nothing is deleted.
#[tokio::test]
async fn acl_change_applies_to_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    let (control, plan) = ControlConfig::new(dir.path().join("state"), plan_with_acl("modify"));
    c.control = Some(control);
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let one = upload(&server, ALICE, b"one").await;
    let two = upload(&server, ALICE, b"two").await;
    let r = req(
        server.addr,
        "DELETE",
        &format!("/alice/data/{one}"),
        ALICE,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "modify allows deleting: {}", r.text());

    // the file changes: alice may only append now
    plan.send(Arc::new(plan_with_acl("append"))).unwrap();
    let r = req(
        server.addr,
        "DELETE",
        &format!("/alice/data/{two}"),
        ALICE,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("append access to alice does not allow this"),
        "{}",
        r.text()
    );
    assert!(server
        .data
        .join("alice/data")
        .join(&two[..2])
        .join(&two)
        .exists());
    // append still works
    upload(&server, ALICE, b"three").await;

    // and down to read: uploads stop at once too
    plan.send(Arc::new(plan_with_acl("read"))).unwrap();
    let h = sha(b"four");
    let r = req(
        server.addr,
        "POST",
        &format!("/alice/data/{h}"),
        ALICE,
        &[],
        b"four",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    server.stop().await;
}

/// A user removed from the htpasswd file is refused from the first request
/// after the hub re-read the file, although their credentials were cached.
#[tokio::test]
async fn removed_user_is_refused_after_the_htpasswd_reload() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.private_repos = false;
    let file = c.htpasswd_path();
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let one = upload(&server, BOB, b"one").await;
    let two = upload(&server, BOB, b"two").await;
    // bob's credentials are verified and cached
    let r = req(
        server.addr,
        "DELETE",
        &format!("/alice/data/{one}"),
        BOB,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // bob removed, carol added (a marker to see the reload happen)
    common::htpasswd(&file, &[("alice", "pw-alice"), ("carol", "pw-carol")]);
    let mut seen = false;
    for _ in 0..600 {
        let r = req(
            server.addr,
            "GET",
            "/alice/keys/",
            Some(("carol", "pw-carol")),
            &[],
            b"",
        )
        .await;
        if r.status == 200 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "the hub never re-read the htpasswd file");
    let r = req(
        server.addr,
        "DELETE",
        &format!("/alice/data/{two}"),
        BOB,
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(server
        .data
        .join("alice/data")
        .join(&two[..2])
        .join(&two)
        .exists());
    server.stop().await;
}
