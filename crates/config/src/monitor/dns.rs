//! `type = "dns"`: one query to one given server.

use std::net::{IpAddr, SocketAddr};

use bulwark_monitor::{DnsProbe, Rcode, RecordType};
use serde_spanned::Spanned;

use super::{missing, MonitorKind};
use crate::{
    raw::RawMonitor,
    read::{closest, Ctx},
};

pub(super) fn dns(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<DnsProbe> {
    let server = match &r.server {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Dns,
                "server",
                "server = \"192.168.1.1:53\" (the DNS server to ask)",
            );
            None
        }
        Some(s) => {
            let v = s.get_ref().trim();
            let parsed = v.parse::<SocketAddr>().ok().or_else(|| {
                v.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            match parsed {
                Some(a) if a.port() == 0 => {
                    cx.err_at(
                        s,
                        "the port of `server` must be 1-65535",
                        "e.g. server = \"192.168.1.1:53\"",
                    );
                    None
                }
                Some(a) => Some(a),
                None => {
                    cx.err_at(
                        s,
                        format!("`{v}` is not an IP address (with an optional port)"),
                        "the probe asks exactly this server, so give its address, e.g. server = \"192.168.1.1:53\", \"9.9.9.9\" or \"[2620:fe::fe]:53\"",
                    );
                    None
                }
            }
        }
    };
    let qname = match &r.name {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Dns,
                "name",
                "name = \"nas.home.arpa\" (the name to look up)",
            );
            None
        }
        Some(n) => Some(n.get_ref().trim().to_string()),
    };
    const RECORDS: [(&str, RecordType); 10] = [
        ("A", RecordType::A),
        ("AAAA", RecordType::AAAA),
        ("CNAME", RecordType::CNAME),
        ("MX", RecordType::MX),
        ("TXT", RecordType::TXT),
        ("NS", RecordType::NS),
        ("SRV", RecordType::SRV),
        ("PTR", RecordType::PTR),
        ("SOA", RecordType::SOA),
        ("CAA", RecordType::CAA),
    ];
    let record = match &r.record {
        None => Some(RecordType::A),
        Some(t) => {
            let up = t.get_ref().trim().to_ascii_uppercase();
            let found = RECORDS.iter().find(|(n, _)| *n == up).map(|(_, r)| *r);
            if found.is_none() {
                let names: Vec<&str> = RECORDS.iter().map(|(n, _)| *n).collect();
                let hint = match closest(&up, &names) {
                    Some(best) => format!(
                        "did you mean `{best}`? (record types: {})",
                        names.join(", ")
                    ),
                    None => format!("record types: {}", names.join(", ")),
                };
                cx.err_at(t, format!("`{}` is not a record type", t.get_ref()), hint);
            }
            found
        }
    };
    const RCODES: [(&str, Rcode); 6] = [
        ("NOERROR", Rcode::NoError),
        ("FORMERR", Rcode::FormErr),
        ("SERVFAIL", Rcode::ServFail),
        ("NXDOMAIN", Rcode::NxDomain),
        ("NOTIMP", Rcode::NotImp),
        ("REFUSED", Rcode::Refused),
    ];
    let rcode = match &r.rcode {
        None => Some(Rcode::NoError),
        Some(c) => {
            let up = c.get_ref().trim().to_ascii_uppercase();
            let found = RCODES.iter().find(|(n, _)| *n == up).map(|(_, r)| *r);
            if found.is_none() {
                let names: Vec<&str> = RCODES.iter().map(|(n, _)| *n).collect();
                let hint = match closest(&up, &names) {
                    Some(best) => format!("did you mean `{best}`? (codes: {})", names.join(", ")),
                    None => format!("codes: {}", names.join(", ")),
                };
                cx.err_at(
                    c,
                    format!("`{}` is not a DNS response code", c.get_ref()),
                    hint,
                );
            }
            found
        }
    };
    let mut expected_answers = Vec::new();
    if let Some(list) = &r.expect {
        for a in list.get_ref() {
            if a.get_ref().trim().is_empty() {
                cx.err_at(a, "empty answer in `expect`", "remove it");
            } else if matches!(record, Some(RecordType::A | RecordType::AAAA))
                && a.get_ref().trim().parse::<IpAddr>().is_err()
            {
                cx.err_at(
                    a,
                    format!(
                        "`{}` is not an IP address, and {} answers are",
                        a.get_ref(),
                        record.map_or(String::new(), |r| r.to_string())
                    ),
                    "e.g. expect = [\"192.168.1.10\"], or set record = \"CNAME\" to check an alias",
                );
            }
            expected_answers.push(a.get_ref().trim().to_string());
        }
        if rcode.is_some_and(|c| c != Rcode::NoError) && !list.get_ref().is_empty() {
            cx.err_at(
                list,
                "`expect` with an rcode other than NOERROR",
                "a name that doesn't resolve has no answers: remove `expect` or `rcode`",
            );
        }
    }
    Some(DnsProbe {
        server: server?,
        name: qname?,
        record_type: record?,
        expected_answers,
        expected_rcode: rcode?,
    })
}
