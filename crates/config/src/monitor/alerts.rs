//! `[alerts]`: the hub's dead-man's switch (`hub_ping_url_*`), its
//! connectivity canaries and the default `remind_every`.

use std::{path::Path, time::Duration};

use bulwark_monitor::{HttpProbe, Probe, StatusRange, TcpProbe};
use serde_spanned::Spanned;

use super::{remind, DEFAULT_HUB_PING_INTERVAL, DEFAULT_REMIND_EVERY};
use crate::{
    fields::{http_url, secret},
    multihost,
    raw::RawAlerts,
    read::Ctx,
    SecretSource,
};

/// `[alerts]`: settings of the hub's alerting.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// `hub_ping_url_file` / `hub_ping_url_env`: a healthchecks.io-style
    /// ping URL the hub pings every `hub_ping_interval` (its dead-man's
    /// switch). A secret.
    pub hub_ping: Option<SecretSource>,
    /// How often the hub pings (default 1 minute).
    pub hub_ping_interval: Duration,
    /// Canaries: while none of them answers, the hub takes its own network
    /// to be down and holds back alerts ([`bulwark_monitor::connectivity_lost`]).
    /// `tcp:HOST:PORT` becomes a [`TcpProbe`]; an `http(s)://` URL an
    /// [`HttpProbe`] that takes any HTTP answer, without certificate checks.
    /// Empty (the default): never hold back.
    pub connectivity: Vec<Probe>,
    /// The default `remind_every` of monitors (default 24 hours; `None`:
    /// `"off"`).
    pub remind_every: Option<Duration>,
}

impl Default for Alerts {
    fn default() -> Self {
        Self {
            hub_ping: None,
            hub_ping_interval: DEFAULT_HUB_PING_INTERVAL,
            connectivity: Vec::new(),
            remind_every: Some(DEFAULT_REMIND_EVERY),
        }
    }
}

pub(super) fn alerts(cx: &mut Ctx<'_>, a: RawAlerts, base: &Path) -> Alerts {
    let hub_ping = secret(
        cx,
        a.hub_ping_url_file.as_ref(),
        a.hub_ping_url_env.as_ref(),
        "hub_ping_url",
        base,
    )
    .ok()
    .flatten();
    let mut out = Alerts {
        hub_ping,
        ..Alerts::default()
    };
    if let Some(i) = &a.hub_ping_interval {
        if a.hub_ping_url_file.is_none() && a.hub_ping_url_env.is_none() {
            cx.err_at(
                i,
                "`hub_ping_interval` only applies with a ping URL",
                "add hub_ping_url_file = \"/etc/bulwark/hc-ping.url\" (a file holding the URL of your healthchecks.io check), or remove it",
            );
        }
        if let Some(d) = multihost::positive(
            cx,
            i,
            "hub_ping_interval",
            "1m",
            "the hub would ping without pause",
        ) {
            out.hub_ping_interval = d;
        }
    }
    if let Some(r) = &a.remind_every {
        if let Some(d) = remind(cx, r) {
            out.remind_every = d;
        }
    }
    if let Some(list) = &a.connectivity {
        for c in list.get_ref() {
            if let Some(p) = canary(cx, c) {
                out.connectivity.push(p);
            }
        }
    }
    out
}

/// One `connectivity` entry: `tcp:HOST:PORT` or an http(s) URL.
fn canary(cx: &mut Ctx<'_>, c: &Spanned<String>) -> Option<Probe> {
    const HINT: &str =
        "write \"tcp:HOST:PORT\" (e.g. \"tcp:1.1.1.1:53\") or an http:// or https:// URL (e.g. \"http://192.168.1.1\")";
    let v = c.get_ref().trim();
    let probe = if let Some(rest) = v.strip_prefix("tcp:") {
        let parsed = rest.rsplit_once(':').and_then(|(h, p)| {
            let port = p.parse::<u16>().ok().filter(|p| *p > 0)?;
            let host = h.trim_start_matches('[').trim_end_matches(']');
            (!host.is_empty()).then(|| TcpProbe {
                host: host.to_string(),
                port,
            })
        });
        match parsed {
            Some(t) => Probe::Tcp(t),
            None => {
                cx.err_at(c, format!("`{v}` is not tcp:HOST:PORT"), HINT);
                return None;
            }
        }
    } else if v.starts_with("http://") || v.starts_with("https://") {
        if !http_url(
            cx,
            c,
            "connectivity",
            "http://192.168.1.1",
            "a canary only needs an answer: give the URL without credentials",
        ) {
            return None;
        }
        // Any answer means the network works: every status, no certificate check, no redirects.
        Probe::Http(HttpProbe {
            expected_status: vec![StatusRange { min: 100, max: 599 }],
            insecure: true,
            follow_redirects: false,
            ..HttpProbe::new(v)
        })
    } else {
        cx.err_at(c, format!("`{v}` is not a connectivity check"), HINT);
        return None;
    };
    if let Err(e) = probe.validate() {
        cx.err_at(c, format!("bad connectivity check: {e}"), HINT);
        return None;
    }
    Some(probe)
}
