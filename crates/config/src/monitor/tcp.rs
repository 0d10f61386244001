//! `type = "tcp"`: can a connection to `host:port` be opened?

use bulwark_monitor::TcpProbe;
use serde_spanned::Spanned;

use super::{host_port, MonitorKind};
use crate::{raw::RawMonitor, read::Ctx};

pub(super) fn tcp(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<TcpProbe> {
    let (host, port) = host_port(cx, r, name, clean, MonitorKind::Tcp, None)?;
    Some(TcpProbe { host, port })
}
