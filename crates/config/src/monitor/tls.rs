//! `type = "tls"`: the certificate of any TLS port (trust and days left).

use std::path::Path;

use bulwark_monitor::TlsProbe;
use serde_spanned::Spanned;

use super::{host_port, int, tls_trust, MonitorKind, DEFAULT_TLS_PORT};
use crate::{raw::RawMonitor, read::Ctx};

pub(super) fn tls(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
    base: &Path,
) -> Option<TlsProbe> {
    let hp = host_port(cx, r, name, clean, MonitorKind::Tls, Some(DEFAULT_TLS_PORT));
    let mut p = TlsProbe::new("", DEFAULT_TLS_PORT);
    if let Some(s) = &r.server_name {
        if s.get_ref().trim().is_empty() {
            cx.err_at(
                s,
                "`server_name` is empty",
                "remove it to use `host`, or give the name the certificate must carry",
            );
        }
        p.server_name = Some(s.get_ref().trim().to_string());
    }
    if let Some(d) = &r.min_days {
        p.min_days = int(cx, d, "min_days", (0, 3650), "min_days = 14")?;
    }
    tls_trust(cx, r, base, &mut p.ca_file, &mut p.insecure);
    let (host, port) = hp?;
    Some(TlsProbe { host, port, ..p })
}
