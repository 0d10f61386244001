//! A table of bad inputs and the exact message each one gets.

#![allow(clippy::unwrap_used)]

use std::path::Path;

const GOOD_REPO: &str = "[repositories.r]\nurl = \"/srv/r\"\npassword_file = \"/p\"\n";

fn job(body: &str) -> String {
    format!("{GOOD_REPO}[jobs.j]\nrepository = \"r\"\n{body}")
}

/// (input, expected "line:col", message substring, hint substring)
fn cases() -> Vec<(String, &'static str, &'static str, &'static str)> {
    vec![
        ("colour = 1\n".into(), "1:1", "unknown key `colour`", "valid keys here"),
        ("[setings]\nhost = \"x\"\n".into(), "1:2", "unknown key `setings`", "did you mean `settings`?"),
        (job("paths = [\"/a\"]\npathes = [\"/b\"]\n"), "7:1", "unknown key `pathes`", "did you mean `paths`?"),
        (job("paths = [\"/a\"]\none_filesystem = true\n"), "7:1", "unknown key `one_filesystem`", "did you mean `one_file_system`?"),
        (job("paths = \"/a\"\n"), "6:9", "wrong type: found string \"/a\", expected a sequence", ""),
        (job("paths = [\"/a\"]\none_file_system = \"yes\"\n"), "7:19", "wrong type", ""),
        (format!("{GOOD_REPO}[jobs.j]\nrepository = \"nope\"\npaths = [\"/a\"]\n"), "5:14", "uses repository `nope`, which is not declared", "declared repositories: r"),
        ("[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\npassword_env = \"P\"\n".into(), "4:16", "both `password_file` and `password_env` are set", "keep one"),
        ("[repositories.r]\nurl = \"/x\"\n".into(), "1:15", "has no password source", "password_file"),
        ("[repositories.r]\npassword_file = \"/p\"\n".into(), "1:15", "has no `url`", "rest:https"),
        ("[repositories.r]\nurl = \"ftp:host/x\"\npassword_file = \"/p\"\n".into(), "2:7", "unknown repository type `ftp:`", "e.g. url"),
        ("[repositories.r]\nurl = \"rest:hub:8000/x\"\npassword_file = \"/p\"\n".into(), "2:7", "rest must start with http:// or https://", ""),
        ("[repositories.r]\nurl = \"s3:https://s3.example.com\"\npassword_file = \"/p\"\n".into(), "2:7", "names no bucket", ""),
        ("[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n[repositories.r.rest]\nusername = \"a\"\npassword_file = \"/q\"\n".into(), "4:1", "only applies to a rest: url", "remove it"),
        ("[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n[repositories.r.s3]\nregion = \"eu\"\n".into(), "4:1", "only applies to an s3: url", ""),
        (job("paths = [\"var/lib\"]\n"), "6:10", "path `var/lib` is relative", "absolute path"),
        (job("[[jobs.j.commands]]\ncommand = \"pg_dumpall\"\nfilename = \"../x.sql\"\n"), "8:12", "`../x.sql` is not a valid filename", "without `.` or `..`"),
        (job("[[jobs.j.commands]]\ncommand = \"a\"\nfilename = \"d.sql\"\n[[jobs.j.commands]]\ncommand = \"b\"\nfilename = \"d.sql\"\n"), "11:12", "write `d.sql`", "own filename"),
        (job("[[jobs.j.commands]]\ncommand = []\nfilename = \"d.sql\"\n"), "7:11", "empty command array", ""),
        (job("[[jobs.j.commands]]\ncommand = 5\nfilename = \"d.sql\"\n"), "7:11", "a command string (run with sh -c) or a non-empty array", ""),
        (job("[[jobs.j.commands]]\ncommand = \"x\"\n"), "7:11", "needs `command` and `filename`", ""),
        (job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_daily = 0\n"), "8:14", "keep_daily must be at least 1", "omit the key"),
        (job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_within = \"30 days\"\n"), "8:15", "bad keep_within", "30d"),
        (job("paths = [\"/a\"]\n[jobs.j.retention]\nprune = true\n"), "7:1", "keeps nothing", "keep_daily"),
        (job("paths = [\"/a\"]\ntags = [\"a,b\"]\n"), "7:9", "`a,b` is not a valid tag", "no commas"),
        (job("tags = [\"x\"]\n"), "4:7", "backs up nothing", "paths"),
        (format!("{GOOD_REPO}[jobs.\"bad name\"]\nrepository = \"r\"\npaths = [\"/a\"]\n"), "4:7", "is not a valid job name", "letters"),
        (job("paths = [\"/a\"]\n[jobs.j.hooks]\ntimeout = \"soon\"\n"), "8:11", "`soon` is not a duration", "10m"),
        (job("paths = [\"/a\"]\nexclude_if_present = [\"a/b\"]\n"), "7:23", "`a/b` is not a file name", ".nobackup"),
        (job("paths = [\"/a\"]\n[jobs.j.hooks]\nbefor = []\n"), "8:1", "unknown key `befor`", "did you mean `before`?"),
        ("[jobs.j\n".into(), "1:8", "", ""),
    ]
}

#[test]
fn every_bad_input_gets_its_message() {
    let mut failures = Vec::new();
    for (input, at, msg, hint) in cases() {
        let err = match bulwark_config::parse(&input, Path::new("bulwark.toml")) {
            Ok(_) => {
                failures.push(format!("accepted:\n{input}"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let first = err.lines().next().unwrap_or_default();
        let ok = first.starts_with(&format!("bulwark.toml:{at}: ")) && first.contains(msg) && err.contains(hint);
        if !ok {
            failures.push(format!("input:\n{input}\nexpected {at} `{msg}` / `{hint}`\ngot: {err}\n"));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n---\n"));
}

#[test]
fn all_semantic_problems_are_reported_together() {
    let input = format!("{GOOD_REPO}[jobs.a]\nrepository = \"nope\"\npaths = [\"rel\"]\n[jobs.a.retention]\nkeep_daily = 0\n");
    let err = bulwark_config::parse(&input, Path::new("x.toml")).unwrap_err();
    let bulwark_config::ConfigError::Invalid(diags) = err else { panic!("not Invalid") };
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![5, 6, 8], "{diags:#?}");
}

#[test]
fn unreadable_file_names_the_file() {
    let err = bulwark_config::load(Path::new("/nonexistent/bulwark.toml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/bulwark.toml"), "{err}");
}
