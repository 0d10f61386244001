//! Which keys apply to which monitor type: a key of another type is refused
//! with the types it applies to.

use std::ops::Range;

use serde_spanned::Spanned;

use super::MonitorKind;
use crate::{raw::RawMonitor, read::Ctx};

/// The keys that only some types take, with their spans, in file order.
fn typed_keys(r: &RawMonitor) -> Vec<(&'static str, Range<usize>)> {
    fn s<T>(v: Option<&Spanned<T>>) -> Option<Range<usize>> {
        v.map(Spanned::span)
    }
    let mut keys: Vec<(&'static str, Range<usize>)> = [
        ("interval", s(r.interval.as_ref())),
        ("timeout", s(r.timeout.as_ref())),
        ("failure_threshold", s(r.failure_threshold.as_ref())),
        ("success_threshold", s(r.success_threshold.as_ref())),
        ("on", s(r.on.as_ref())),
        ("quorum", s(r.quorum.as_ref())),
        ("url", s(r.url.as_ref())),
        ("method", s(r.method.as_ref())),
        ("headers", s(r.headers.as_ref())),
        ("header_files", s(r.header_files.as_ref())),
        ("header_envs", s(r.header_envs.as_ref())),
        ("body", s(r.body.as_ref())),
        ("expected_status", s(r.expected_status.as_ref())),
        ("body_contains", s(r.body_contains.as_ref())),
        ("json_pointer", s(r.json_pointer.as_ref())),
        ("json_equals", s(r.json_equals.as_ref())),
        ("max_response_time", s(r.max_response_time.as_ref())),
        ("min_cert_days", s(r.min_cert_days.as_ref())),
        ("follow_redirects", s(r.follow_redirects.as_ref())),
        ("ca_file", s(r.ca_file.as_ref())),
        ("insecure", s(r.insecure.as_ref())),
        ("host", s(r.host.as_ref())),
        ("port", s(r.port.as_ref())),
        ("server_name", s(r.server_name.as_ref())),
        ("min_days", s(r.min_days.as_ref())),
        ("server", s(r.server.as_ref())),
        ("name", s(r.name.as_ref())),
        ("record", s(r.record.as_ref())),
        ("expect", s(r.expect.as_ref())),
        ("rcode", s(r.rcode.as_ref())),
        ("path", s(r.path.as_ref())),
        ("check", s(r.check.as_ref())),
        ("command", s(r.command.as_ref())),
        ("exit_code", s(r.exit_code.as_ref())),
        ("job", s(r.job.as_ref())),
        ("jobs", s(r.jobs.as_ref())),
        ("max_age", s(r.max_age.as_ref())),
        ("targets", s(r.targets.as_ref())),
        ("min_free", s(r.min_free.as_ref())),
    ]
    .into_iter()
    .filter_map(|(k, span)| span.map(|span| (k, span)))
    .collect();
    keys.sort_by_key(|(_, span)| span.start);
    keys
}

/// Whether a type-specific key applies to `kind`.
fn applies(key: &str, kind: MonitorKind) -> bool {
    use MonitorKind as K;
    match key {
        "url" | "method" | "headers" | "header_files" | "header_envs" | "body"
        | "expected_status" | "body_contains" | "json_pointer" | "json_equals"
        | "max_response_time" | "min_cert_days" | "follow_redirects" => kind == K::Http,
        "ca_file" | "insecure" => matches!(kind, K::Http | K::Tls),
        "host" | "port" => matches!(kind, K::Tcp | K::Tls),
        "server_name" | "min_days" => kind == K::Tls,
        "server" | "name" | "record" | "expect" | "rcode" => kind == K::Dns,
        "path" | "check" => kind == K::Path,
        "command" | "exit_code" => kind == K::Command,
        "job" | "max_age" => kind == K::Backup,
        "jobs" => matches!(kind, K::Backup | K::Replication),
        "targets" => kind == K::Replication,
        "min_free" => kind == K::Disk,
        "timeout" | "failure_threshold" | "success_threshold" | "on" | "quorum" => kind.is_probe(),
        "interval" => kind != K::Replication,
        _ => true,
    }
}

/// Refuses the keys that don't apply to `kind`.
pub(super) fn foreign_keys(cx: &mut Ctx<'_>, r: &RawMonitor, kind: MonitorKind) {
    for (key, span) in typed_keys(r) {
        if applies(key, kind) {
            continue;
        }
        let hint = match (kind, key) {
            (MonitorKind::Replication, "interval") => {
                "a replication monitor routes the alerts the hub raises as it replicates; it has no interval of its own; remove it".to_string()
            }
            (k, "timeout" | "failure_threshold" | "success_threshold" | "on" | "quorum") if !k.is_probe() => format!(
                "a `{k}` monitor is evaluated by the hub itself, from what it knows: it has no probe timeout, thresholds or vantage points; remove it"
            ),
            _ => {
                let kinds: Vec<String> =
                    MonitorKind::ALL.iter().filter(|k| applies(key, **k)).map(|k| format!("`{k}`")).collect();
                format!("`{key}` applies to {} monitors; remove it, or change the type", kinds.join(", "))
            }
        };
        cx.err(
            span,
            format!("`{key}` does not apply to a `{kind}` monitor"),
            Some(hint),
        );
    }
}
