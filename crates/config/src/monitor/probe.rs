//! The part every probe monitor shares: interval, timeout, thresholds,
//! vantage points (`on`) and quorum around the probe its kind module built,
//! then [`MonitorSpec::validate`] as a backstop (its error pointed at the
//! key it is about).

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Range,
    path::Path,
};

use bulwark_monitor::{MonitorSpec, Probe, SpecError, Vantage};
use serde_spanned::Spanned;

use super::{
    command, dns, http, human, int, interval, path, tcp, tls, Known, MonitorKind, ProbeCheck,
};
use crate::{
    multihost,
    raw::RawMonitor,
    read::{closest, Ctx},
};

/// The vantage points (`on`): "hub" or declared hosts, each once.
fn vantage(cx: &mut Ctx<'_>, r: &RawMonitor, hosts: &BTreeSet<String>) -> Option<Vec<Vantage>> {
    let Some(on) = &r.on else {
        return Some(vec![Vantage::Hub]);
    };
    if on.get_ref().is_empty() {
        cx.err_at(
            on,
            "`on` is empty",
            "remove it to run the monitor on the hub, or list where it runs, e.g. on = [\"hub\", \"nas\"]",
        );
        return None;
    }
    let mut names: Vec<&str> = vec!["hub"];
    names.extend(hosts.iter().map(String::as_str).filter(|h| *h != "hub"));
    let mut out: Vec<Vantage> = Vec::new();
    let mut ok = true;
    for v in on.get_ref() {
        let n = v.get_ref();
        let vantage = if n == "hub" {
            Vantage::Hub
        } else if hosts.contains(n) {
            Vantage::Agent(n.clone())
        } else {
            let hint = match closest(n, &names) {
                Some(best) => format!("did you mean `{best}`? (\"hub\" or a declared host: {})", names.join(", ")),
                None if hosts.is_empty() => {
                    "a monitor runs on \"hub\" or on the agent of a declared host: declare it with [hosts.NAME]"
                        .to_string()
                }
                None => {
                    format!("a monitor runs on \"hub\" or on the agent of a declared host ({})", names[1..].join(", "))
                }
            };
            cx.err_at(v, format!("unknown host `{n}` in `on`"), hint);
            ok = false;
            continue;
        };
        if out.contains(&vantage) {
            cx.err_at(v, format!("`{n}` is listed twice in `on`"), "remove one");
            ok = false;
            continue;
        }
        out.push(vantage);
    }
    ok.then_some(out)
}

/// A probe monitor: the probe, then the spec around it, then
/// [`MonitorSpec::validate`] as a backstop.
pub(super) fn probe_check(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    kind: MonitorKind,
    name: &Spanned<String>,
    clean: bool,
    known: &Known,
    base: &Path,
) -> Option<ProbeCheck> {
    let before = cx.diags.len();
    let interval = interval(cx, r);
    let timeout = r
        .timeout
        .as_ref()
        .map_or(Some(bulwark_monitor::DEFAULT_TIMEOUT), |v| {
            multihost::positive(cx, v, "timeout", "10s", "every probe would fail at once")
        });
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t > i {
            match (&r.timeout, &r.interval) {
                (Some(tv), _) => cx.err_at(
                    tv,
                    format!("`timeout` ({}) is longer than `interval` ({})", human(t), human(i)),
                    "a probe must end before the next one starts: make the timeout shorter, or the interval longer",
                ),
                (None, Some(iv)) => cx.err_at(
                    iv,
                    format!("`interval` ({}) is shorter than the default timeout ({})", human(i), human(t)),
                    format!("a probe must end before the next one starts: set timeout = \"{}\" or less, or a longer interval", human(i)),
                ),
                (None, None) => {}
            }
        }
    }
    let threshold = |cx: &mut Ctx<'_>,
                     v: Option<&Spanned<i64>>,
                     key: &str,
                     default: u32,
                     what: &str|
     -> Option<u32> {
        v.map_or(Some(default), |v| {
            int(
                cx,
                v,
                key,
                (1, i64::from(u32::MAX)),
                &format!("{key} = {default} ({what})"),
            )
        })
    };
    let failure_threshold = threshold(
        cx,
        r.failure_threshold.as_ref(),
        "failure_threshold",
        bulwark_monitor::DEFAULT_FAILURE_THRESHOLD,
        "consecutive failures before the monitor is down",
    );
    let success_threshold = threshold(
        cx,
        r.success_threshold.as_ref(),
        "success_threshold",
        bulwark_monitor::DEFAULT_SUCCESS_THRESHOLD,
        "consecutive successes before it is up again",
    );
    let vantage = vantage(cx, r, &known.hosts);
    let quorum = match (&r.quorum, &vantage) {
        (None, _) => Some(1),
        (Some(q), Some(v)) if usize::try_from(*q.get_ref()).is_ok_and(|n| n > v.len()) => {
            let places = v
                .iter()
                .map(|v| format!("\"{}\"", v.name()))
                .collect::<Vec<_>>()
                .join(", ");
            cx.err_at(
                q,
                format!(
                    "`quorum` is {}, but monitor `{}` runs on only {} vantage point{}",
                    q.get_ref(),
                    name.get_ref(),
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                ),
                format!("quorum is how many of the places in `on` must see it down; at most {} here (on = [{places}]), or add places to `on`", v.len()),
            );
            None
        }
        (Some(q), _) => int(
            cx,
            q,
            "quorum",
            (1, i64::MAX),
            "quorum = 2 (how many vantage points must see it down)",
        ),
    };
    let (probe, secret_headers) = match kind {
        MonitorKind::Http => match http::http(cx, r, name, clean, base) {
            Some((p, s)) => (Some(Probe::Http(p)), s),
            None => (None, BTreeMap::new()),
        },
        MonitorKind::Tcp => (
            tcp::tcp(cx, r, name, clean).map(Probe::Tcp),
            BTreeMap::new(),
        ),
        MonitorKind::Dns => (
            dns::dns(cx, r, name, clean).map(Probe::Dns),
            BTreeMap::new(),
        ),
        MonitorKind::Tls => (
            tls::tls(cx, r, name, clean, base).map(Probe::Tls),
            BTreeMap::new(),
        ),
        MonitorKind::Path => (
            path::path(cx, r, name, clean).map(Probe::Path),
            BTreeMap::new(),
        ),
        _ => (
            command::command(cx, r, name, clean).map(Probe::Command),
            BTreeMap::new(),
        ),
    };
    if cx.diags.len() > before {
        return None;
    }
    let spec = MonitorSpec {
        name: name.get_ref().clone(),
        probe: probe?,
        interval: interval?,
        timeout: timeout?,
        failure_threshold: failure_threshold?,
        success_threshold: success_threshold?,
        vantage: vantage?,
        quorum: quorum?,
    };
    if let Err(e) = spec.validate() {
        let at = spec_span(r, &e).unwrap_or_else(|| name.span());
        cx.err(
            at,
            format!("monitor `{}`: {e}", name.get_ref()),
            Some(spec_hint(&e).into()),
        );
        return None;
    }
    Some(ProbeCheck {
        spec,
        secret_headers,
    })
}

/// Where a [`SpecError`] points in the table.
fn spec_span(r: &RawMonitor, e: &SpecError) -> Option<Range<usize>> {
    fn s<T>(v: Option<&Spanned<T>>) -> Option<Range<usize>> {
        v.map(Spanned::span)
    }
    let field = match e {
        SpecError::Empty { field } | SpecError::Invalid { field, .. } => *field,
        SpecError::Quorum { .. } => "quorum",
    };
    match field {
        "url" => s(r.url.as_ref()),
        "method" => s(r.method.as_ref()),
        "header name" | "header value of" => s(r.headers.as_ref()),
        "expected_status" => s(r.expected_status.as_ref()),
        "json pointer" => s(r.json_pointer.as_ref()),
        "body_contains" => s(r.body_contains.as_ref()),
        "name" => s(r.name.as_ref()),
        "server" => s(r.server.as_ref()),
        "expected answer" => s(r.expect.as_ref()),
        "host" => s(r.host.as_ref()),
        "port" => s(r.port.as_ref()),
        "server_name" => s(r.server_name.as_ref()).or_else(|| s(r.host.as_ref())),
        "path" => s(r.path.as_ref()),
        "argv" | "shell" => s(r.command.as_ref()),
        "interval" => s(r.interval.as_ref()),
        "timeout" => s(r.timeout.as_ref()),
        "vantage" | "vantage agent name" => s(r.on.as_ref()),
        "quorum" => s(r.quorum.as_ref()),
        _ => None,
    }
}

fn spec_hint(e: &SpecError) -> &'static str {
    let field = match e {
        SpecError::Empty { field } | SpecError::Invalid { field, .. } => *field,
        SpecError::Quorum { .. } => "quorum",
    };
    match field {
        "url" => "e.g. url = \"https://nas.lan:8443/health\"",
        "method" => "e.g. method = \"HEAD\"",
        "header name" | "header value of" => {
            "header names are letters, digits and `-`; values are one line of visible text"
        }
        "json pointer" => "a JSON pointer starts with `/`, e.g. json_pointer = \"/status\"",
        "name" => "e.g. name = \"nas.home.arpa\"",
        "expected answer" => {
            "A and AAAA answers are IP addresses, e.g. expect = [\"192.168.1.10\"]"
        }
        "host" => "a host name or IP address without port or path, e.g. host = \"nas.lan\"",
        "server_name" => "a DNS name, e.g. server_name = \"nas.example.org\"",
        "path" => "an absolute path, e.g. path = \"/mnt/nas\"",
        "argv" | "shell" => "e.g. command = [\"/usr/local/bin/check-raid\"]",
        _ => "see docs/monitoring.md",
    }
}
