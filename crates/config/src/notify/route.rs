//! `[[routes]]`: which notifiers a message goes to, by monitor and least
//! severity.

use std::collections::BTreeSet;

use bulwark_notify::{Route, Severity};

use crate::{
    fields::{monitor_patterns, severity},
    raw::RawRoute,
    read::{closest, Ctx, Item},
};

pub(super) fn route(
    cx: &mut Ctx<'_>,
    item: Item<RawRoute>,
    notifiers: &[String],
    monitors: &BTreeSet<String>,
) -> Option<Route> {
    let Item { span, raw, clean } = item;
    let before = cx.diags.len();
    let r = raw?;
    let mut names = Vec::new();
    match &r.notifiers {
        None => {
            if clean {
                cx.err(
                    span,
                    "a route has no `notifiers`",
                    Some(match notifiers.first() {
                        Some(n) => format!("add the notifiers its messages go to, e.g. notifiers = [\"{n}\"]"),
                        None => {
                            "declare a notifier with [notifiers.NAME] and list it, e.g. notifiers = [\"phone\"]".into()
                        }
                    }),
                );
            }
        }
        Some(list) if list.get_ref().is_empty() => {
            cx.err_at(
                list,
                "`notifiers` is empty",
                "list the notifiers its messages go to, or remove the route",
            );
        }
        Some(list) => {
            let known: Vec<&str> = notifiers.iter().map(String::as_str).collect();
            for n in list.get_ref() {
                let v = n.get_ref();
                if !notifiers.contains(v) {
                    let hint = match closest(v, &known) {
                        Some(best) => format!(
                            "did you mean `{best}`? (declared notifiers: {})",
                            known.join(", ")
                        ),
                        None if known.is_empty() => {
                            "no notifiers are declared; declare one with [notifiers.NAME]".into()
                        }
                        None => format!("declared notifiers: {}", known.join(", ")),
                    };
                    cx.err_at(n, format!("unknown notifier `{v}` in a route"), hint);
                } else if names.contains(v) {
                    cx.err_at(n, format!("notifier `{v}` is listed twice"), "remove one");
                } else {
                    names.push(v.clone());
                }
            }
        }
    }
    let subjects = r
        .monitors
        .as_ref()
        .map(|m| monitor_patterns(cx, m, "route", monitors))
        .unwrap_or_default();
    let min_severity = r
        .min_severity
        .as_ref()
        .map_or(Some(Severity::Info), |s| severity(cx, s, "min_severity"));
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(Route {
        notifiers: names,
        subjects,
        min_severity: min_severity?,
    })
}
