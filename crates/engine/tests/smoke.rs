use bulwark_engine::*;
use std::path::Path;

#[test]
fn smoke() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/f.txt"), b"hello").unwrap();
    std::fs::write(src.join("big"), vec![7u8; 3_000_000]).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::os::unix::fs::symlink("a/b/f.txt", src.join("link")).unwrap();
    std::fs::hard_link(src.join("big"), src.join("big2")).unwrap();
    let spec = RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw");
    let repo = spec.init().unwrap();
    let s = repo.backup(&BackupRequest { paths: vec![src.clone()], commands: vec![CommandSource{program:"sh".into(), args: vec!["-c".into(), "echo dump".into()], filename: "db/dump.sql".into(), display: "echo".into()}], ..Default::default() }).unwrap();
    println!("{s:#?}");
    let (_, entries, _) = repo.ls("latest", &SnapshotFilter::default(), None).unwrap();
    for e in &entries { println!("{} {}", e.kind, e.path); }
    let r = repo.restore(&RestoreRequest { snapshot: "latest".into(), target: tmp.path().join("out"), verify: true, ..Default::default() }).unwrap();
    println!("{r:#?}");
    let out = tmp.path().join("out");
    let rel = src.strip_prefix("/").unwrap();
    assert_eq!(std::fs::read(out.join(rel).join("a/b/f.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::read(out.join("db/dump.sql")).unwrap(), b"dump\n");
    let c = repo.check(CheckData::All).unwrap();
    println!("{c:#?}");
    assert!(c.ok);
    let _ = Path::new("/");
    let st = std::process::Command::new("restic").args(["-r", tmp.path().join("repo").to_str().unwrap(), "check", "--read-data"]).env("RESTIC_PASSWORD", "pw").status().unwrap();
    assert!(st.success());
}
