//! htpasswd parsing: never panics; every accepted entry has a non-empty user
//! without `:` and a bcrypt-prefixed hash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(users) = bulwark_hub::parse_htpasswd(text, std::path::Path::new("fuzz.htpasswd")) {
        for (user, hash) in &users {
            assert!(!user.is_empty() && !user.contains(':'), "{user:?}");
            assert!(
                ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)),
                "{hash:?}"
            );
        }
    }
});
