//! Who may do what where: ACL entries, `--private-repos`, `--append-only`.

use bulwark_store::RepoPath;

use crate::config::{Access, AclEntry, HubConfig};

/// The access policy derived from a [`HubConfig`]. With a control plane,
/// the ACL of the current plan (the `[[hub.acl]]` entries of the file as
/// last reloaded) replaces the configured entries, from the very next
/// request after a reload on.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    entries: Vec<AclEntry>,
    append_only: bool,
    private_repos: bool,
    plan: Option<tokio::sync::watch::Receiver<std::sync::Arc<crate::ControlPlan>>>,
}

/// How specifically `pattern` matches `repo` (higher is more specific), or
/// `None` if it does not.
fn specificity(pattern: &str, repo: &RepoPath) -> Option<u32> {
    let path = repo.to_string();
    if pattern == "*" {
        return Some(1);
    }
    if pattern == path {
        return Some(4);
    }
    if let Some(prefix) = pattern.strip_suffix("/*") {
        let segs = repo.segments();
        return (segs.len() > 1 && segs[0] == prefix).then_some(2);
    }
    // A bare first segment: that repository and everything below it.
    (!pattern.contains('/') && repo.segments().first().is_some_and(|s| s == pattern)).then_some(3)
}

impl Policy {
    pub(crate) fn new(config: &HubConfig) -> Self {
        Self {
            entries: config.acl.clone(),
            append_only: config.append_only,
            private_repos: config.private_repos,
            plan: config.control.as_ref().map(|c| c.plan.clone()),
        }
    }

    /// The access `user` (`None`: anonymous, with `--no-auth`) has on `repo`.
    pub(crate) fn access(&self, user: Option<&str>, repo: &RepoPath) -> Access {
        if let Some(rx) = &self.plan {
            let plan = std::sync::Arc::clone(&rx.borrow());
            if let Some(acl) = &plan.hub_acl {
                return self.decide(acl, user, repo);
            }
        }
        self.decide(&self.entries, user, repo)
    }

    fn decide(&self, entries: &[AclEntry], user: Option<&str>, repo: &RepoPath) -> Access {
        let mut best: Option<(u32, bool, Access)> = None;
        for e in entries {
            let named = match user {
                Some(u) if e.user == u => true,
                _ if e.user == "*" => false,
                _ => continue,
            };
            let Some(spec) = specificity(&e.repo, repo) else {
                continue;
            };
            let better = match best {
                None => true,
                Some((s, n, _)) => (spec, named) > (s, n),
            };
            if better {
                best = Some((spec, named, e.access));
            }
        }
        let level = match best {
            Some((_, _, a)) => a,
            None => match user {
                Some(u) if self.private_repos => {
                    if repo.segments().first().is_some_and(|s| s == u) {
                        Access::Modify
                    } else {
                        Access::None
                    }
                }
                _ => Access::Modify,
            },
        };
        if self.append_only {
            level.min(Access::Append)
        } else {
            level
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(append_only: bool, private_repos: bool, acl: &[(&str, &str, Access)]) -> Policy {
        let mut c = HubConfig::new("/nonexistent");
        c.append_only = append_only;
        c.private_repos = private_repos;
        c.acl = acl
            .iter()
            .map(|(u, r, a)| AclEntry {
                user: (*u).into(),
                repo: (*r).into(),
                access: *a,
            })
            .collect();
        Policy::new(&c)
    }

    fn r(s: &str) -> RepoPath {
        RepoPath::parse(s).expect("repo")
    }

    #[test]
    fn defaults_follow_rest_server_flags() {
        assert_eq!(
            policy(false, false, &[]).access(Some("bob"), &r("alice")),
            Access::Modify
        );
        assert_eq!(
            policy(true, false, &[]).access(Some("bob"), &r("alice")),
            Access::Append
        );
        let p = policy(false, true, &[]);
        assert_eq!(p.access(Some("alice"), &r("alice/laptop")), Access::Modify);
        assert_eq!(p.access(Some("alice"), &r("alice")), Access::Modify);
        assert_eq!(p.access(Some("bob"), &r("alice/laptop")), Access::None);
        assert_eq!(p.access(Some("ali"), &r("alice")), Access::None);
    }

    #[test]
    fn most_specific_entry_wins() {
        let p = policy(
            false,
            true,
            &[
                ("*", "*", Access::Read),
                ("alice", "alice", Access::Append),
                ("alice", "alice/db", Access::Modify),
                ("bob", "alice/*", Access::Read),
                ("*", "shared", Access::Append),
            ],
        );
        assert_eq!(p.access(Some("alice"), &r("alice/laptop")), Access::Append);
        assert_eq!(p.access(Some("alice"), &r("alice/db")), Access::Modify);
        assert_eq!(p.access(Some("bob"), &r("alice/db")), Access::Read);
        assert_eq!(p.access(Some("bob"), &r("alice")), Access::Read); // via * *
        assert_eq!(p.access(Some("carol"), &r("shared/x")), Access::Append);
        assert_eq!(p.access(Some("carol"), &r("other")), Access::Read);
        // append-only caps explicit grants
        let p = policy(true, false, &[("alice", "alice", Access::Modify)]);
        assert_eq!(p.access(Some("alice"), &r("alice")), Access::Append);
    }
}
