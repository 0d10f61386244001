//! The HTTP notifiers and the pinger against a real HTTP server on 127.0.0.1:
//! the exact shape of each request, retries, rate limits, timeouts, TLS with
//! a private CA, and secrets kept out of errors.

mod common;

use std::{collections::BTreeMap, time::Duration};

use bulwark_notify::{
    Channel, Discord, ErrorKind, Event, Gotify, Message, Notifier, Ntfy, Pinger, SendOptions,
    Severity, Slack, Webhook, WebhookMethod,
};
use common::{Pki, Receiver, Reply};
use tokio::time::Instant;

fn fast() -> SendOptions {
    SendOptions {
        timeout: Duration::from_secs(3),
        retry_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
    }
}

fn down() -> Message {
    Message::new(
        Event::Down,
        Severity::Critical,
        "db-main",
        "db-main is down",
        "connection refused\nsince 10:00",
    )
    .with_at("2024-05-01T10:00:00Z".parse().expect("timestamp"))
    .with_link("https://hub.example/monitors/db-main")
}

fn ntfy(server: String, token: Option<&str>) -> Notifier {
    Notifier::new(
        "phone",
        Channel::Ntfy(Ntfy {
            server,
            topic: "bulwark-alerts".into(),
            token: token.map(Into::into),
            tags: vec!["homelab".into()],
            ca_file: None,
        }),
    )
    .with_options(fast())
}

fn discord(url: String) -> Notifier {
    Notifier::new("chat", Channel::Discord(Discord { url })).with_options(fast())
}

#[tokio::test]
async fn ntfy_publishes_json_with_priority_tags_click_and_token() {
    let rx = Receiver::start(vec![Reply::body(200, r#"{"id":"x"}"#)]).await;
    ntfy(rx.url("/ntfy"), Some("tk_s3cret"))
        .send(&down())
        .await
        .expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path, "/ntfy/",
        "JSON publishing goes to the server's base URL"
    );
    assert_eq!(r.header("authorization"), Some("Bearer tk_s3cret"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["topic"], "bulwark-alerts");
    assert_eq!(body["title"], "db-main is down");
    assert_eq!(body["priority"], 5);
    assert_eq!(
        body["tags"],
        serde_json::json!(["homelab", "rotating_light"])
    );
    assert_eq!(body["click"], "https://hub.example/monitors/db-main");
    let text = body["message"].as_str().expect("message");
    assert!(
        text.starts_with("connection refused\nsince 10:00\n\nSubject: db-main\nSeverity: critical"),
        "{text}"
    );

    // severity → priority, no token → no Authorization, no link → no click
    let rx = Receiver::start(vec![Reply::status(200)]).await;
    let mut m = down();
    m.severity = Severity::Warning;
    m.event = Event::Up;
    m.link = None;
    ntfy(rx.url(""), None).send(&m).await.expect("delivered");
    let r = rx.only();
    assert_eq!(r.path, "/");
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert_eq!(body["priority"], 4);
    assert_eq!(
        body["tags"],
        serde_json::json!(["homelab", "white_check_mark"])
    );
    assert!(body.get("click").is_none(), "{body}");
    m.severity = Severity::Info;
    assert_eq!(Ntfy::priority(m.severity), 3);
}

#[tokio::test]
async fn gotify_posts_message_with_key_header_and_priority() {
    let rx = Receiver::start(vec![Reply::body(200, r#"{"id":1}"#)]).await;
    let n = Notifier::new(
        "g",
        Channel::Gotify(Gotify {
            url: rx.url("/gotify/"),
            token: "AppT0ken".into(),
            ca_file: None,
        }),
    )
    .with_options(fast());
    let mut m = down();
    m.severity = Severity::Warning;
    n.send(&m).await.expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path, "/gotify/message",
        "token travels in a header, not the query"
    );
    assert_eq!(r.header("x-gotify-key"), Some("AppT0ken"));
    let body = r.json();
    assert_eq!(body["title"], "db-main is down");
    assert_eq!(body["priority"], 7);
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("Subject: db-main"),
        "{body}"
    );
    assert_eq!(
        body["extras"]["client::notification"]["click"]["url"],
        "https://hub.example/monitors/db-main"
    );
    assert_eq!(Gotify::priority(Severity::Critical), 10);
    assert_eq!(Gotify::priority(Severity::Info), 4);
}

#[tokio::test]
async fn discord_posts_content_and_a_coloured_embed_without_mentions() {
    let rx = Receiver::start(vec![Reply::status(204)]).await;
    let mut m = down();
    m.body = "@everyone look".into();
    discord(rx.url("/api/webhooks/42/T0KEN"))
        .send(&m)
        .await
        .expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/api/webhooks/42/T0KEN");
    let body = r.json();
    assert_eq!(body["content"], "db-main is down");
    assert_eq!(body["username"], "Bulwark");
    assert_eq!(body["allowed_mentions"], serde_json::json!({"parse": []}));
    let embed = &body["embeds"][0];
    assert_eq!(embed["title"], "db-main");
    assert_eq!(embed["description"], "@everyone look");
    assert_eq!(embed["color"], 0xD93025);
    assert_eq!(embed["timestamp"], "2024-05-01T10:00:00Z");
    assert_eq!(embed["url"], "https://hub.example/monitors/db-main");
    assert_eq!(
        embed["fields"][0],
        serde_json::json!({"name": "Severity", "value": "critical", "inline": true})
    );
    assert_eq!(
        embed["fields"][1],
        serde_json::json!({"name": "Event", "value": "down", "inline": true})
    );

    // colour by event
    assert_eq!(Discord::color(Event::Up, Severity::Critical), 0x1E8E3E);
    assert_eq!(Discord::color(Event::Reminder, Severity::Info), 0xF29900);
    assert_eq!(Discord::color(Event::Test, Severity::Info), 0x1A73E8);
    assert_eq!(Discord::color(Event::Alert, Severity::Warning), 0xF29900);
}

#[tokio::test]
async fn slack_posts_escaped_text_and_blocks() {
    let rx = Receiver::start(vec![Reply::body(200, "ok")]).await;
    let mut m = down();
    m.body = "a <!channel> & b".into();
    let n = Notifier::new(
        "s",
        Channel::Slack(Slack {
            url: rx.url("/services/T1/B2/XyZ"),
            text_only: false,
        }),
    )
    .with_options(fast());
    n.send(&m).await.expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/services/T1/B2/XyZ");
    let body = r.json();
    assert_eq!(
        body["text"],
        ":red_circle: *db-main is down*\na &lt;!channel&gt; &amp; b"
    );
    let blocks = body["blocks"].as_array().expect("blocks");
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["text"], ":red_circle: db-main is down");
    assert_eq!(blocks[1]["text"]["text"], "a &lt;!channel&gt; &amp; b");
    let ctx = blocks[2]["elements"][0]["text"].as_str().expect("context");
    assert!(
        ctx.starts_with("*db-main* · critical · down · 2024-05-01T10:00:00Z"),
        "{ctx}"
    );
    assert!(
        ctx.ends_with("<https://hub.example/monitors/db-main|open>"),
        "{ctx}"
    );

    let rx = Receiver::start(vec![Reply::body(200, "ok")]).await;
    let n = Notifier::new(
        "s",
        Channel::Slack(Slack {
            url: rx.url("/hook"),
            text_only: true,
        }),
    )
    .with_options(fast());
    n.send(&down()).await.expect("delivered");
    let body = rx.only().json();
    assert!(body.get("blocks").is_none(), "{body}");
    assert_eq!(
        body["text"],
        ":red_circle: *db-main is down*\nconnection refused\nsince 10:00"
    );
}

fn webhook(url: String, method: WebhookMethod, template: Option<&str>) -> Notifier {
    let mut headers = BTreeMap::new();
    headers.insert("X-Token".to_string(), "hdr-secret".to_string());
    Notifier::new(
        "hook",
        Channel::Webhook(Webhook {
            url,
            method,
            headers,
            template: template.map(Into::into),
            ca_file: None,
        }),
    )
    .with_options(fast())
}

#[tokio::test]
async fn webhook_substitutes_the_template_with_json_escaping() {
    let rx = Receiver::start(vec![Reply::status(202)]).await;
    let template = r#"{"msg": "{{title}}", "details": {"text": "{{ body }}", "sev": "{{severity}}", "ev": "{{event}}",
        "who": "{{subject}}", "when": "{{at}}", "link": "{{link}}"}}"#;
    let n = webhook(rx.url("/in/abc?x=1"), WebhookMethod::Put, Some(template));
    n.validate().expect("valid template");
    let m = Message::new(
        Event::Alert,
        Severity::Warning,
        "nas \"main\"",
        "disk \"sda\" at 91 %",
        "line 1\nline 2\ttab\\ é ✓ 🚨",
    )
    .with_at("2024-05-01T10:00:00Z".parse().expect("timestamp"));
    n.send(&m).await.expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/in/abc?x=1");
    assert_eq!(r.header("x-token"), Some("hdr-secret"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let raw = r.text();
    // escaped as JSON string contents, the template's layout kept, non-ASCII as UTF-8
    assert!(
        raw.starts_with(
            r#"{"msg": "disk \"sda\" at 91 %", "details": {"text": "line 1\nline 2\ttab\\ é ✓ 🚨""#
        ),
        "{raw}"
    );
    assert!(
        raw.contains("\n        \"who\""),
        "the template's own newline stays: {raw}"
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"msg": "disk \"sda\" at 91 %", "details": {"text": "line 1\nline 2\ttab\\ é ✓ 🚨",
            "sev": "warning", "ev": "alert", "who": "nas \"main\"", "when": "2024-05-01T10:00:00Z", "link": ""}})
    );
}

#[tokio::test]
async fn webhook_without_template_sends_the_message_as_json() {
    let rx = Receiver::start(vec![Reply::status(200)]).await;
    webhook(rx.url("/in"), WebhookMethod::Post, None)
        .send(&down())
        .await
        .expect("delivered");
    let r = rx.only();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.json(),
        serde_json::json!({"title": "db-main is down", "body": "connection refused\nsince 10:00", "severity": "critical",
            "event": "down", "subject": "db-main", "at": "2024-05-01T10:00:00Z", "link": "https://hub.example/monitors/db-main"})
    );
}

#[tokio::test]
async fn a_template_that_is_not_json_is_a_config_error_and_nothing_is_sent() {
    let rx = Receiver::start(vec![Reply::status(200)]).await;
    let n = webhook(
        rx.url("/in"),
        WebhookMethod::Post,
        Some(r#"{"text": {{title}}}"#),
    );
    let e = n.validate().expect_err("placeholder outside a string");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.to_string().contains("not JSON"), "{e}");
    let e = n.send(&down()).await.expect_err("not sent");
    assert_eq!(e.kind, ErrorKind::Config);
    let e = webhook(
        rx.url("/in"),
        WebhookMethod::Post,
        Some(r#"{"text": "{{titel}}"}"#),
    )
    .validate()
    .expect_err("unknown");
    assert!(
        e.to_string().contains("unknown placeholder `{{titel}}`"),
        "{e}"
    );
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn a_500_is_retried_once_then_delivered() {
    let rx = Receiver::start(vec![Reply::body(500, "hiccup"), Reply::status(200)]).await;
    ntfy(rx.url(""), None)
        .send(&down())
        .await
        .expect("delivered on the retry");
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body, reqs[1].body, "the same request again");
}

#[tokio::test]
async fn a_persistent_500_fails_with_status_body_and_hint() {
    let body = format!("database exploded: {}", "x".repeat(400));
    let rx = Receiver::start(vec![Reply::body(500, body)]).await;
    let e = ntfy(rx.url(""), None)
        .send(&down())
        .await
        .expect_err("fails");
    assert_eq!(rx.requests().len(), 2, "one retry, no more");
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.is_temporary());
    assert_eq!(e.notifier, "phone");
    assert_eq!(e.channel, "ntfy");
    assert_eq!(e.status, Some(500));
    let answer = e.answer.clone().expect("answer");
    assert!(answer.starts_with("database exploded: xxx"), "{answer}");
    assert_eq!(
        answer.len(),
        200 + '…'.len_utf8(),
        "first 200 bytes: {answer}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("ntfy notifier `phone`: POST http://127.0.0.1:"),
        "{text}"
    );
    assert!(
        text.contains("answered 500 Internal Server Error: \"database exploded: xxx"),
        "{text}"
    );
    assert!(text.contains("(after one retry)"), "{text}");
    assert!(text.contains("(hint: the service has a problem"), "{text}");
}

#[tokio::test]
async fn a_401_is_not_retried_and_says_what_to_fix() {
    let rx = Receiver::start(vec![Reply::body(
        401,
        r#"{"code":40101,"error":"unauthorized"}"#,
    )])
    .await;
    let e = ntfy(rx.url(""), Some("tk_wrong"))
        .send(&down())
        .await
        .expect_err("refused");
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(!e.is_temporary());
    assert!(
        e.to_string()
            .contains("401 Unauthorized: \"{\\\"code\\\":40101"),
        "{e}"
    );
    assert!(
        e.hint.as_deref().expect("hint").contains("access token"),
        "{e}"
    );
    assert!(!e.to_string().contains("tk_wrong"));
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_delivers() {
    let rx = Receiver::start(vec![
        Reply::Answer(429, vec![("retry-after", "1".into())], "slow down".into()),
        Reply::status(200),
    ])
    .await;
    let started = Instant::now();
    ntfy(rx.url(""), None)
        .send(&down())
        .await
        .expect("delivered after waiting");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    assert_eq!(rx.requests().len(), 2);
}

#[tokio::test]
async fn a_429_asking_too_long_fails_at_once() {
    let rx = Receiver::start(vec![Reply::Answer(
        429,
        vec![("retry-after", "120".into())],
        "rate limited".into(),
    )])
    .await;
    let started = Instant::now();
    let e = discord(rx.url("/api/webhooks/1/tok3n"))
        .send(&down())
        .await
        .expect_err("rate limited");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(e.status, Some(429));
    let text = e.to_string();
    assert!(
        text.contains("asked to wait 120 s (Retry-After), more than the 5 s we wait"),
        "{text}"
    );
    assert!(text.contains("\"rate limited\""), "{text}");

    // a 429 that never ends: waited out twice, then an error
    let rx = Receiver::start(vec![Reply::Answer(
        429,
        vec![("retry-after", "0".into())],
        String::new(),
    )])
    .await;
    let e = ntfy(rx.url(""), None)
        .send(&down())
        .await
        .expect_err("still limited");
    assert_eq!(e.kind, ErrorKind::RateLimited);
    assert_eq!(rx.requests().len(), 3);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_clearly() {
    let rx = Receiver::start(vec![Reply::Hang]).await;
    let opts = SendOptions {
        timeout: Duration::from_millis(500),
        ..fast()
    };
    let started = Instant::now();
    let e = discord(rx.url("/api/webhooks/7/HaNgToKeN"))
        .with_options(opts)
        .send(&down())
        .await
        .expect_err("timeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "two attempts of 0.5 s: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(rx.requests().len(), 2, "retried once");
    assert_eq!(e.kind, ErrorKind::Timeout);
    let text = e.to_string();
    assert!(
        text.contains("no answer within 0.5 s (after one retry)"),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
    assert!(
        !text.contains("HaNgToKeN") && !format!("{e:?}").contains("HaNgToKeN"),
        "{text}"
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error_without_the_webhook_token() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let n = discord(format!(
        "http://127.0.0.1:{port}/api/webhooks/9/CoNnEcTtOkEn"
    ));
    let e = n.send(&down()).await.expect_err("refused");
    assert_eq!(e.kind, ErrorKind::Connect);
    let text = e.to_string();
    assert!(
        text.contains(&format!("POST http://127.0.0.1:{port}/***: cannot connect")),
        "{text}"
    );
    assert!(text.contains("(after one retry)"), "{text}");
    assert!(
        !text.contains("CoNnEcTtOkEn") && !format!("{e:?}").contains("CoNnEcTtOkEn"),
        "{text}"
    );
}

#[tokio::test]
async fn discord_webhook_token_never_in_debug_display_or_errors() {
    const TOKEN: &str = "dIsCoRdWeBhOoKtOkEn_123";
    // the server even echoes the token back in its answer
    let rx = Receiver::start(vec![Reply::body(
        404,
        format!(r#"{{"message": "Unknown Webhook {TOKEN}", "code": 10015}}"#),
    )])
    .await;
    let n = discord(rx.url(&format!("/api/webhooks/123/{TOKEN}")));
    for text in [format!("{n:?}"), n.to_string(), format!("{:?}", n.channel)] {
        assert!(!text.contains(TOKEN), "{text}");
        assert!(!text.contains("/api/webhooks/123"), "{text}");
    }
    assert_eq!(
        n.to_string(),
        format!("discord notifier `chat` (http://{}/***)", rx.addr)
    );
    let e = n.send(&down()).await.expect_err("unknown webhook");
    assert_eq!(e.kind, ErrorKind::Rejected);
    assert_eq!(e.status, Some(404));
    for text in [e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    assert!(e.to_string().contains("Unknown Webhook ***"), "{e}");
    assert!(
        e.hint
            .as_deref()
            .expect("hint")
            .contains("webhook was deleted"),
        "{e}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let rx = Receiver::start(vec![Reply::Answer(
        301,
        vec![("location", "https://elsewhere.example/hook".into())],
        String::new(),
    )])
    .await;
    let e = webhook(rx.url("/old"), WebhookMethod::Post, None)
        .send(&down())
        .await
        .expect_err("redirect");
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(e.kind, ErrorKind::Rejected);
    assert!(
        e.hint
            .as_deref()
            .expect("hint")
            .contains("redirects to https://elsewhere.example/hook"),
        "{e}"
    );
}

#[tokio::test]
async fn https_with_a_private_ca_needs_ca_file() {
    let pki = Pki::new();
    let rx = Receiver::start_tls(vec![Reply::status(200)], &pki).await;
    let mut n = ntfy(rx.url(""), None);
    let e = n.send(&down()).await.expect_err("unknown issuer");
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(e.message.contains("TLS failed"), "{e}");
    assert!(e.hint.as_deref().expect("hint").contains("ca_file"), "{e}");
    assert!(rx.requests().is_empty());

    if let Channel::Ntfy(c) = &mut n.channel {
        c.ca_file = Some(pki.ca_file.clone());
    }
    n.validate().expect("valid with ca_file");
    n.send(&down()).await.expect("delivered over TLS");
    assert_eq!(rx.only().json()["topic"], "bulwark-alerts");

    // a ca_file that is not a certificate
    if let Channel::Ntfy(c) = &mut n.channel {
        c.ca_file = Some(pki.key_file.clone());
    }
    let e = n.validate().expect_err("not a certificate");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("no PEM certificate"), "{e}");
}

#[tokio::test]
async fn pinger_follows_healthchecks_conventions() {
    let rx = Receiver::start(vec![Reply::body(200, "OK")]).await;
    let p = Pinger {
        url: rx.url("/ping/6a1f-uuid"),
        options: fast(),
    };
    p.validate().expect("valid");
    p.start().await.expect("start");
    p.success().await.expect("success");
    p.fail("backup failed:\nexit 3 ✗").await.expect("fail");
    let reqs = rx.requests();
    let seen: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/ping/6a1f-uuid/start"),
            ("GET", "/ping/6a1f-uuid"),
            ("POST", "/ping/6a1f-uuid/fail")
        ]
    );
    assert!(reqs[0].body.is_empty() && reqs[1].body.is_empty());
    assert_eq!(reqs[2].text(), "backup failed:\nexit 3 ✗");
    assert_eq!(
        reqs[2].header("content-type"),
        Some("text/plain; charset=utf-8")
    );
}

#[tokio::test]
async fn pinger_errors_name_the_ping_but_not_its_uuid() {
    let rx = Receiver::start(vec![Reply::body(404, "not found")]).await;
    let p = Pinger {
        url: rx.url("/ping/SeCrEtUuId"),
        options: fast(),
    };
    assert!(!format!("{p:?}").contains("SeCrEtUuId"));
    let e = p.fail("x").await.expect_err("404");
    assert_eq!(rx.requests().len(), 1);
    assert_eq!(e.channel, "ping");
    assert_eq!(e.status, Some(404));
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "ping notifier `ping`: POST http://{}/***/fail answered 404 Not Found: \"not found\"",
            rx.addr
        )),
        "{text}"
    );
    assert!(!text.contains("SeCrEtUuId"), "{text}");

    let rx = Receiver::start(vec![Reply::status(502), Reply::status(200)]).await;
    let p = Pinger {
        url: rx.url("/p/x"),
        options: fast(),
    };
    p.success().await.expect("retried once after 502");
    assert_eq!(rx.requests().len(), 2);

    assert_eq!(
        Pinger::new("not a url").validate().expect_err("bad").kind,
        ErrorKind::Config
    );
}
