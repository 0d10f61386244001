//! [`extract_host`](crate::extract_host): the part of a many-host file that
//! one agent needs.

use std::{collections::BTreeSet, path::Path};

use toml::{Table, Value};

use bulwark_monitor::Probe;

use crate::{
    parse, Config, ConfigError, DatabaseKind, Diagnostic, MonitorCheck, RepoUrl, SecretSource,
};

/// Sets `key` to the absolute `path` if the table has that key.
fn set_path(t: &mut Table, key: &str, path: Option<&Path>) {
    if let (Some(v), Some(p)) = (t.get_mut(key), path) {
        *v = Value::String(p.to_string_lossy().into_owned());
    }
}

fn file_of(s: Option<&SecretSource>) -> Option<&Path> {
    match s {
        Some(SecretSource::File(p)) => Some(p),
        _ => None,
    }
}

/// The table `section.name` of `doc`, taken out of it.
fn take(doc: &mut Table, section: &str, name: &str) -> Option<Table> {
    match doc.get_mut(section)?.as_table_mut()?.remove(name)? {
        Value::Table(t) => Some(t),
        _ => None,
    }
}

/// Something that cannot happen once the text parsed; reported rather than
/// panicking.
fn internal(origin: &Path, message: String) -> ConfigError {
    ConfigError::Invalid(vec![Diagnostic {
        file: origin.to_path_buf(),
        line: 1,
        column: 1,
        message,
        hint: Some(
            "this is a bug in Bulwark; please report it with the configuration (minus secrets)"
                .into(),
        ),
    }])
}

pub(crate) fn extract_host(text: &str, origin: &Path, host: &str) -> Result<String, ConfigError> {
    let cfg: Config = parse(text, origin)?;
    let Some(decl) = cfg.hosts.get(host) else {
        return Err(ConfigError::UnknownHost {
            name: host.to_string(),
            available: if cfg.hosts.is_empty() {
                "none".into()
            } else {
                cfg.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        });
    };
    let mut doc: Table = text
        .parse()
        .map_err(|e: toml::de::Error| internal(origin, e.message().to_string()))?;
    let mut out = Table::new();

    if let Some(settings) = doc.remove("settings") {
        out.insert("settings".into(), settings);
    }
    if let Some(Value::Table(mut agent)) = doc.remove("agent") {
        set_path(&mut agent, "ca_file", cfg.agent.ca_file.as_deref());
        set_path(&mut agent, "state_dir", cfg.agent.state_dir.as_deref());
        out.insert("agent".into(), Value::Table(agent));
    }
    let mut this = take(&mut doc, "hosts", host).unwrap_or_default();
    set_path(&mut this, "token_file", decl.token_file.as_deref());
    out.insert(
        "hosts".into(),
        Value::Table(Table::from_iter([(host.to_string(), Value::Table(this))])),
    );

    let mut used = BTreeSet::new();
    let mut jobs = Table::new();
    for job in cfg.jobs_of(host) {
        let Some(mut t) = take(&mut doc, "jobs", &job.name) else {
            continue;
        };
        if let Some(Value::Array(dbs)) = t.get_mut("databases") {
            for (raw, db) in dbs.iter_mut().zip(&job.databases) {
                let password = match &db.kind {
                    DatabaseKind::Postgres { password, .. }
                    | DatabaseKind::Mysql { password, .. } => password.as_ref(),
                    DatabaseKind::Sqlite { .. } => None,
                };
                if let Some(raw) = raw.as_table_mut() {
                    set_path(raw, "password_file", file_of(password));
                }
            }
        }
        used.insert(job.repository.clone());
        jobs.insert(job.name.clone(), Value::Table(t));
    }
    let mut maintenance = Table::new();
    for m in cfg.maintenance_of(host) {
        let Some(t) = take(&mut doc, "maintenance", &m.name) else {
            continue;
        };
        used.insert(m.repository.clone());
        maintenance.insert(m.name.clone(), Value::Table(t));
    }
    let mut repositories = Table::new();
    for name in &used {
        let (Some(mut t), Some(repo)) = (
            take(&mut doc, "repositories", name),
            cfg.repositories.get(name),
        ) else {
            continue;
        };
        if let RepoUrl::Local(p) = &repo.url {
            set_path(&mut t, "url", Some(p));
        }
        set_path(&mut t, "password_file", file_of(Some(&repo.password)));
        if let (Some(Value::Table(rest)), Some(auth)) = (t.get_mut("rest"), &repo.rest) {
            set_path(rest, "password_file", file_of(Some(&auth.password)));
        }
        if let (Some(Value::Table(s3)), Some(settings)) = (t.get_mut("s3"), &repo.s3) {
            set_path(
                s3,
                "access_key_id_file",
                file_of(settings.access_key_id.as_ref()),
            );
            set_path(
                s3,
                "secret_access_key_file",
                file_of(settings.secret_access_key.as_ref()),
            );
        }
        repositories.insert(name.clone(), Value::Table(t));
    }
    // The probe monitors this host runs, as it runs them: alone in `on`;
    // quorum and alerting stay with the hub.
    let mut monitors = Table::new();
    for m in cfg.monitors_of(host) {
        let (Some(mut t), MonitorCheck::Probe(p)) = (take(&mut doc, "monitors", &m.name), &m.check)
        else {
            continue;
        };
        for key in ["quorum", "severity", "remind_every", "recovery", "enabled"] {
            t.remove(key);
        }
        t.insert(
            "on".into(),
            Value::Array(vec![Value::String(host.to_string())]),
        );
        let ca_file = match &p.spec.probe {
            Probe::Http(h) => h.ca_file.as_deref(),
            Probe::Tls(t) => t.ca_file.as_deref(),
            _ => None,
        };
        set_path(&mut t, "ca_file", ca_file);
        if let Some(Value::Table(files)) = t.get_mut("header_files") {
            for (header, source) in &p.secret_headers {
                set_path(files, header, file_of(Some(source)));
            }
        }
        monitors.insert(m.name.clone(), Value::Table(t));
    }
    for (section, table) in [
        ("repositories", repositories),
        ("jobs", jobs),
        ("maintenance", maintenance),
        ("monitors", monitors),
    ] {
        if !table.is_empty() {
            out.insert(section.into(), Value::Table(table));
        }
    }

    let body = toml::to_string(&out).map_err(|e| {
        internal(
            origin,
            format!("cannot write the extracted configuration: {e}"),
        )
    })?;
    // (`host` is a declared host name: letters, digits, `-` and `_`.)
    let result = format!(
        "# The part of the hub's bulwark.toml that host `{host}` runs, extracted by Bulwark.\n# Edit the original, not this copy.\n\n{body}"
    );
    // The extract must stand on its own; if it does not, that is a bug here.
    parse(&result, origin).map_err(|e| {
        internal(
            origin,
            format!("the configuration extracted for host `{host}` is invalid: {e}"),
        )
    })?;
    Ok(result)
}
