//! `type = "path"`: a local path exists, is a mountpoint, answers reads.

use std::path::Path;

use bulwark_monitor::{PathCheck, PathProbe};
use serde_spanned::Spanned;

use super::{missing, MonitorKind};
use crate::{
    raw::RawMonitor,
    read::{closest, Ctx},
};

pub(super) fn path(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<PathProbe> {
    let path = match &r.path {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Path,
                "path",
                "path = \"/mnt/nas\"",
            );
            None
        }
        Some(p) if !Path::new(p.get_ref()).is_absolute() => {
            cx.err_at(
                p,
                format!("path `{}` is relative", p.get_ref()),
                "use an absolute path, e.g. path = \"/mnt/nas\" (it is checked on each vantage point, not relative to anything)",
            );
            None
        }
        Some(p) => Some(p.get_ref().clone()),
    };
    let check = match &r.check {
        None => Some(PathCheck::Readable),
        Some(c) => match c.get_ref().as_str() {
            "exists" => Some(PathCheck::Exists),
            "mountpoint" => Some(PathCheck::Mountpoint),
            "readable" => Some(PathCheck::Readable),
            other => {
                let hint = match closest(other, &["exists", "mountpoint", "readable"]) {
                    Some(best) => {
                        format!("did you mean `{best}`? (check = \"exists\", \"mountpoint\" or \"readable\")")
                    }
                    None => "use check = \"exists\", \"mountpoint\" or \"readable\"".to_string(),
                };
                cx.err_at(c, format!("`{other}` is not a path check"), hint);
                None
            }
        },
    };
    Some(PathProbe::new(path?, check?))
}
