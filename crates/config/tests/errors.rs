//! A table of bad inputs and the position, message and hint each one gets;
//! several problems reported at once; secrets kept out of messages.

#![allow(clippy::unwrap_used)]

mod common;

use common::{case, check_cases, diagnostics, Case};

use std::path::Path;

use bulwark_config::{parse, ConfigError};

/// Lines 1–3.
const GOOD_REPO: &str = "[repositories.r]\nurl = \"/srv/r\"\npassword_file = \"/p\"\n";

/// A job `j` on lines 4–5; `body` starts on line 6.
fn job(body: &str) -> String {
    format!("{GOOD_REPO}[jobs.j]\nrepository = \"r\"\n{body}")
}

/// A repository `r` on lines 1.. with `body`, and no jobs.
fn repo(body: &str) -> String {
    format!("[repositories.r]\n{body}")
}

fn cases() -> Vec<Case> {
    vec![
        // syntax
        case("[jobs.j\n", "1:8", "unclosed table", ""),
        case("a = 1\na = 2\n", "2:1", "duplicate key `a`", "only once"),
        // unknown keys
        case("colour = 1\n", "1:1", "unknown key `colour`", "valid keys here: settings, repositories, jobs"),
        case("[setings]\nhost = \"x\"\n", "1:2", "unknown key `setings`", "did you mean `settings`?"),
        case(job("paths = [\"/a\"]\npathes = [\"/b\"]\n"), "7:1", "unknown key `pathes`", "did you mean `paths`?"),
        case(job("paths = [\"/a\"]\none_filesystem = true\n"), "7:1", "unknown key `one_filesystem`", "did you mean `one_file_system`?"),
        case(job("paths = [\"/a\"]\n[jobs.j.hooks]\nbefor = []\n"), "8:1", "unknown key `befor`", "did you mean `before`?"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_dialy = 7\n"), "8:1", "unknown key `keep_dialy`", "did you mean `keep_daily`?"),
        case(job("[[jobs.j.commands]]\ncmd = \"x\"\nfilename = \"x\"\n"), "7:1", "unknown key `cmd`", "valid keys here: command, filename"),
        case(repo("url = \"rest:https://h/x\"\npassword_file = \"/p\"\n[repositories.r.rest]\nuser = \"a\"\n"), "5:1", "unknown key `user`", "did you mean `username`?"),
        // wrong types
        case(job("paths = \"/a\"\n"), "6:9", "wrong type for `paths`: expected an array of strings, found a string", "paths = [\"/etc\""),
        case(job("paths = [\"/a\", 1]\n"), "6:16", "wrong type in `paths`: expected an array of strings, but this element is an integer", ""),
        case(job("paths = [\"/a\"]\none_file_system = \"yes\"\n"), "7:19", "expected a boolean (true or false), found a string", "one_file_system = true"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_daily = 1.5\n"), "8:14", "expected a whole number of at least 1, found a float", "keep_daily = 7"),
        case(job("paths = [\"/a\"]\nhooks = 3\n"), "7:9", "wrong type for `hooks`: expected a table, found an integer", "[jobs.NAME.hooks]"),
        case(job("[[jobs.j.commands]]\ncommand = 5\nfilename = \"d.sql\"\n"), "7:11", "expected a string (run with sh -c) or an array of strings", ""),
        case(job("paths = [\"/a\"]\nhost = 1979-05-27\n"), "7:8", "expected a string, found a date/time", ""),
        case("[repositories]\nr = 1\n", "2:5", "wrong type for `repositories.r`: expected a table", "[repositories.r]"),
        // repositories
        case(repo("url = \"/x\"\npassword_file = \"/p\"\npassword_env = \"P\"\n"), "4:16", "both `password_file` and `password_env` are set", "keep one"),
        case(repo("url = \"/x\"\n"), "1:15", "repository `r` has no password source", "password_file"),
        case(repo("password_file = \"/p\"\n"), "1:15", "repository `r` has no `url`", "rest:https"),
        case(repo("url = \"/x\"\npassword_env = \"my secret\"\n"), "3:16", "`password_env` must be the name of an environment variable", "password_env = \"PASSWORD\""),
        case(repo("url = \"/x\"\npassword_file = \"\"\n"), "3:17", "`password_file` is empty", ""),
        case(repo("url = \"ftp:host/x\"\npassword_file = \"/p\"\n"), "2:7", "bad url: unknown repository type `ftp:`", "rest:https://"),
        case(repo("url = \"rest:hub:8000/x\"\npassword_file = \"/p\"\n"), "2:7", "`rest:` must be followed by http:// or https://", "rest:https://host:8000/repo"),
        case(repo("url = \"s3:https://s3.example.com\"\npassword_file = \"/p\"\n"), "2:7", "names no bucket", "endpoint/bucket"),
        case(repo("url = \"/x\"\npassword_file = \"/p\"\n[repositories.r.rest]\nusername = \"a\"\npassword_file = \"/q\"\n"), "4:1", "only applies to a rest: url", "remove it"),
        case(repo("url = \"/x\"\npassword_file = \"/p\"\n[repositories.r.s3]\nregion = \"eu\"\n"), "4:1", "only applies to an s3: url", ""),
        case(repo("url = \"rest:https://h/x\"\npassword_file = \"/p\"\n[repositories.r.rest]\nusername = \"a\"\n"), "4:1", "needs both `username` and `password_file`", ""),
        case(repo("url = \"s3:https://h/b\"\npassword_file = \"/p\"\n[repositories.r.s3]\naccess_key_id_file = \"/k\"\naccess_key_id_env = \"K\"\n"), "6:21", "both `access_key_id_file` and `access_key_id_env` are set", ""),
        case("[repositories.\"my repo\"]\nurl = \"/x\"\npassword_file = \"/p\"\n", "1:15", "`my repo` is not a valid repository name", "letters"),
        // jobs
        case(format!("{GOOD_REPO}[jobs.j]\nrepository = \"nope\"\npaths = [\"/a\"]\n"), "5:14", "job `j` uses repository `nope`, which is not declared", "declared repositories: r"),
        case(format!("{GOOD_REPO}[jobs.j]\npaths = [\"/a\"]\n"), "4:7", "job `j` has no `repository`", ""),
        case(format!("{GOOD_REPO}[jobs.\"bad name\"]\nrepository = \"r\"\npaths = [\"/a\"]\n"), "4:7", "`bad name` is not a valid job name", "letters"),
        case(job("tags = [\"x\"]\n"), "4:7", "job `j` backs up nothing", "[[jobs.j.commands]]"),
        case(job("paths = [\"var/lib\"]\n"), "6:10", "path `var/lib` is relative", "absolute path"),
        case(job("paths = [\"/a\"]\ntags = [\"a,b\"]\n"), "7:9", "`a,b` is not a valid tag", "no commas"),
        case(job("paths = [\"/a\"]\ntags = [\"two words\"]\n"), "7:9", "`two words` is not a valid tag", ""),
        case(job("paths = [\"/a\"]\nexclude = [\"\"]\n"), "7:12", "bad exclude pattern ``: it is empty", "*.tmp"),
        case(job("paths = [\"/a\"]\nexclude = [\"*.[ch\"]\n"), "7:12", "a `[` is not closed", ""),
        case(job("paths = [\"/a\"]\nexclude_if_present = [\"a/b\"]\n"), "7:23", "`a/b` is not a file name", ".nobackup"),
        case(job("paths = [\"/a\"]\nhost = \"my host\"\n"), "7:8", "`host` must be a non-empty name without spaces", ""),
        // command sources
        case(job("[[jobs.j.commands]]\ncommand = []\nfilename = \"d.sql\"\n"), "7:11", "empty command array", "pg_dumpall"),
        case(job("[[jobs.j.commands]]\ncommand = \"  \"\nfilename = \"d.sql\"\n"), "7:11", "empty command", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\n"), "6:1", "a command source of job `j` has no `filename`", "filename = \"postgres/all.sql\""),
        case(job("[[jobs.j.commands]]\ncommand = \"pg_dumpall\"\nfilename = \"../x.sql\"\n"), "8:12", "`../x.sql` is not a valid filename inside the snapshot", "without `.` or `..`"),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"./x.sql\"\n"), "8:12", "not a valid filename", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"/x.sql\"\n"), "8:12", "not a valid filename", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"\"\n"), "8:12", "not a valid filename", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"a\"\nfilename = \"d.sql\"\n[[jobs.j.commands]]\ncommand = \"b\"\nfilename = \"d.sql\"\n"), "11:12", "two command sources of job `j` write `d.sql`", "own filename"),
        case(job("[[jobs.j.commands]]\ncommand = \"a\"\nfilename = \"pg\"\n[[jobs.j.commands]]\ncommand = \"b\"\nfilename = \"pg/x\"\n"), "11:12", "`pg` cannot be both a file and the directory of `pg/x`", ""),
        // hooks
        case(job("paths = [\"/a\"]\n[jobs.j.hooks]\ntimeout = \"soon\"\n"), "8:11", "`soon` is not a duration", "10m"),
        case(job("paths = [\"/a\"]\n[jobs.j.hooks]\ntimeout = \"0s\"\n"), "8:11", "timeout of zero", ""),
        case(job("paths = [\"/a\"]\n[jobs.j.hooks]\nafter = [\"\"]\n"), "8:10", "empty command in `after`", "remove it"),
        // retention
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_daily = 0\n"), "8:14", "keep_daily must be at least 1", "omit the key"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_last = -2\n"), "8:13", "keep_last must be at least 1", "negative"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_within = \"30 days\"\n"), "8:15", "bad keep_within: `30 days` contains a space", "expected e.g. 30d, 1y6m or 2d12h"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nkeep_within = \"3w\"\n"), "8:15", "unknown unit `w`", "30d"),
        case(job("paths = [\"/a\"]\n[jobs.j.retention]\nprune = true\n"), "7:1", "the retention of job `j` keeps nothing", "keep_daily"),
        // settings
        case("[settings]\nhost = \"\"\n", "2:8", "`settings.host` must be a non-empty name", ""),
        // schedules, database sources, fail_on_stderr (more in multihost.rs)
        case(job("paths = [\"/a\"]\nschedule = \"Mon..Fri 03:60\"\n"), "7:25", "bad schedule: `03:60`: minute must be 0-59, not 60", ""),
        case(job("paths = [\"/a\"]\nschedule = \"*-04-31\"\n"), "7:12", "the schedule `*-04-31` never fires", "check the date"),
        case(job("paths = [\"/a\"]\nrandomized_delay = \"30m\"\n"), "7:20", "`randomized_delay` only makes sense with `schedule`", "add schedule"),
        case(job("[[jobs.j.databases]]\ntype = \"sqlite\"\n"), "6:1", "a sqlite source of job `j` has no `path`", "path = "),
        case(job("[[jobs.j.databases]]\ntype = \"postgres\"\npath = \"/x\"\n"), "8:8", "`path` does not apply to a postgres database", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"a\"\nfilename = \"databases/mysql/all.sql\"\n[[jobs.j.databases]]\ntype = \"mariadb\"\n"), "9:1", "a command source and a database source of job `j` both write `databases/mysql/all.sql`", "own filename"),
        case(job("[[jobs.j.commands]]\ncommand = \"a\"\nfilename = \"a.sql\"\nfail_on_stderr = [1]\n"), "9:19", "wrong type in `fail_on_stderr`: expected an array of strings, but this element is an integer", ""),
        case(job("paths = [\"/a\"]\nhost = \"nas\"\n[maintenance.j]\nrepository = \"r\"\n[maintenance.j.retention]\nkeep_last = 1\n"), "8:14", "`j` is the name of both a job and a maintenance task", "rename this one"),
    ]
}

#[test]
fn every_bad_input_gets_its_position_message_and_hint() {
    check_cases(cases(), 25);
}

#[test]
fn all_semantic_problems_are_reported_together() {
    let input = format!("{GOOD_REPO}[jobs.a]\nrepository = \"nope\"\npaths = [\"rel\"]\n[jobs.a.retention]\nkeep_daily = 0\n");
    let at: Vec<(usize, usize)> = diagnostics(&input)
        .iter()
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(at, vec![(5, 14), (6, 10), (8, 14)]);
}

#[test]
fn unknown_keys_wrong_types_and_semantic_problems_are_reported_together() {
    let input = "\
[repositories.r]
url = \"/x\"
password_file = \"/p\"
password_env = \"P\"

[jobs.a]
repository = \"r\"
pathes = [\"/etc\"]
one_file_system = \"yes\"
[jobs.a.hooks]
befor = []

[jobs.b]
repository = \"rr\"
paths = [\"etc\"]
";
    let d = diagnostics(input);
    let got: Vec<String> = d
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "4:16 both `password_file` and `password_env` are set",
            "8:1 unknown key `pathes`",
            "9:19 wrong type for `one_file_system`: expected a boolean (true or false), found a string",
            "11:1 unknown key `befor`",
            "14:14 job `b` uses repository `rr`, which is not declared",
            "15:10 path `etc` is relative",
        ],
        "{d:#?}"
    );
    // job `a` lost keys: no "backs up nothing" guess on top; repository `r`
    // is declared even though it is invalid.
}

#[test]
fn every_syntax_error_is_reported() {
    let d = diagnostics("[jobs.a\nx = = 1\n[jobs.b]\ny = \"unterminated\n");
    assert!(d.len() >= 3, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), (1, 8));
    assert_eq!(d.last().map(|d| d.line), Some(4));
}

#[test]
fn display_is_one_line_per_problem_plus_hints() {
    let err = parse(&job("pathes = []\n"), Path::new("/etc/bulwark.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/etc/bulwark.toml:6:1: unknown key `pathes`\n  hint: did you mean `paths`?"
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    let input = "[repositories.r]\nurl = \"rest:https://alice:hunter2@hub:8000/x\"\npassword_env = \"hunter2 hunter2\"\n";
    let err = parse(input, Path::new("x.toml")).unwrap_err();
    assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");

    let input =
        "[repositories.r]\nurl = \"rest:ftp://alice:hunter2@hub:8000/x\"\npassword_file = \"/p\"\n";
    let err = parse(input, Path::new("x.toml")).unwrap_err();
    assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");

    let input = "[repositories.r]\nurl = \"rest:https://alice:hunter2@hub:8000/x\"\npassword_file = \"/p\"\n[jobs.j]\nrepository = \"r\"\npaths = [\"/a\"]\n";
    let cfg = parse(input, Path::new("x.toml")).unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    assert_eq!(
        cfg.repositories["r"].url.to_string(),
        "rest:https://***@hub:8000/x"
    );

    let input = "[jobs.j]\nrepository = \"r\"\npaths = \"hunter2\"\n";
    let err = parse(input, Path::new("x.toml")).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn unreadable_file_names_the_file() {
    let err = bulwark_config::load(Path::new("/nonexistent/bulwark.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/bulwark.toml") && text.contains("permissions"),
        "{text}"
    );
}

#[test]
fn unknown_job_names_the_available_ones() {
    let cfg = parse(&job("paths = [\"/a\"]\n"), Path::new("x.toml")).unwrap();
    let err = cfg.job("nope").unwrap_err().to_string();
    assert!(err.contains("`nope`") && err.contains("jobs: j"), "{err}");
}
