//! Property tests (`scripts/fuzz` runs them longer) of the repository check, which takes text
//! from anyone signed in and decides what host git later fetches or which directory it reads.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::repository;
use den_sandbox::NetworkPolicy;
use den_session::EgressPolicy;

/// Text shaped like a URL, with every part drawn from the awkward cases: odd schemes,
/// credentials, hosts that are addresses in other spellings or look like options, ports,
/// `..` and encoded characters in paths, queries and fragments.
fn url_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just("https://"),
        Just("http://"),
        Just("HTTPS://"),
        Just("ssh://"),
        Just("file://"),
        Just("git://"),
        Just("ext::"),
        Just(""),
    ];
    let userinfo = prop_oneof![
        Just(""),
        Just("user@"),
        Just("user:pw@"),
        Just(":@"),
        Just("%40@")
    ];
    let host = prop_oneof![
        Just("github.com".to_owned()),
        Just("127.0.0.1".to_owned()),
        Just("0x7f.1".to_owned()),
        Just("2130706433".to_owned()),
        Just("[::1]".to_owned()),
        Just("[::ffff:169.254.169.254]".to_owned()),
        Just("localhost".to_owned()),
        Just("-oProxyCommand=x".to_owned()),
        "[a-z0-9.-]{0,20}",
        ".{0,12}",
    ];
    let port = prop_oneof![
        Just(String::new()),
        (0u32..70000).prop_map(|p| format!(":{p}"))
    ];
    let path = prop::collection::vec(
        prop_oneof![
            Just("..".to_owned()),
            Just("%2e%2e".to_owned()),
            Just("repo.git".to_owned()),
            "[a-zA-Z0-9_.~%-]{0,10}",
            ".{0,6}",
        ],
        0..5,
    )
    .prop_map(|parts| parts.join("/"));
    let tail = prop_oneof![
        Just(""),
        Just("?x=1"),
        Just("#frag"),
        Just(" --upload-pack=x")
    ];
    (scheme, userinfo, host, port, path, tail)
        .prop_map(|(s, u, h, p, path, t)| format!("{s}{u}{h}{p}/{path}{t}"))
}

/// A local path under (or climbing out of) the fixture's root.
fn path_like(root: &str) -> impl Strategy<Value = String> {
    let root = root.to_owned();
    prop::collection::vec(
        prop_oneof![
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just("repo".to_owned()),
            Just("escape".to_owned()),
            Just("plain".to_owned()),
            Just(String::new()),
            "[a-z.]{1,6}",
        ],
        0..5,
    )
    .prop_map(move |parts| format!("{root}/{}", parts.join("/")))
}

/// An allowed root holding a repository, a plain directory and a symlink out of the root.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("repo/.git")).expect("the repository");
    std::fs::create_dir_all(root.join("plain")).expect("a plain directory");
    std::fs::create_dir_all(dir.path().join("outside/.git")).expect("a repository outside");
    std::os::unix::fs::symlink(dir.path().join("outside"), root.join("escape")).expect("a symlink");
    Fixture { _dir: dir, root }
}

/// What an accepted repository must be: a normalised http(s) URL with a host, no credentials,
/// query or fragment, nothing git could read as an option; or a canonical path inside the root.
fn assert_safe(accepted: &str, root: &Path) -> Result<(), TestCaseError> {
    prop_assert!(
        !accepted
            .chars()
            .any(|c| c.is_whitespace() || c.is_control()),
        "{accepted:?}"
    );
    if accepted.starts_with('/') {
        let canonical = Path::new(accepted)
            .canonicalize()
            .expect("an accepted path exists");
        prop_assert_eq!(Path::new(accepted), canonical.as_path());
        let root = root.canonicalize().expect("the root");
        prop_assert!(
            canonical.starts_with(&root),
            "{accepted} is outside {}",
            root.display()
        );
    } else {
        let url = url::Url::parse(accepted).expect("an accepted URL parses");
        prop_assert!(matches!(url.scheme(), "http" | "https"), "{accepted}");
        prop_assert!(
            url.username().is_empty() && url.password().is_none(),
            "{accepted}"
        );
        prop_assert!(
            url.query().is_none() && url.fragment().is_none(),
            "{accepted}"
        );
        let host = url.host_str().unwrap_or_default();
        prop_assert!(!host.is_empty() && !host.starts_with('-'), "{accepted}");
    }
    Ok(())
}

proptest! {
    #[test]
    fn an_accepted_repository_is_always_safe_and_checking_it_again_changes_nothing(
        text in prop_oneof![url_like(), ".{0,80}", path_like("/ROOT")],
        network in prop_oneof![Just(NetworkPolicy::Internet), Just(NetworkPolicy::None)],
    ) {
        let fixture = fixture();
        let root = fixture.root.display().to_string();
        let text = text.replace("/ROOT", &root);
        let roots = [fixture.root.clone()];
        let egress = EgressPolicy { network, ..EgressPolicy::default() };
        if let Ok(accepted) = repository(&text, &roots, &egress) {
            assert_safe(&accepted, &fixture.root)?;
            if network == NetworkPolicy::None {
                prop_assert!(accepted.starts_with('/'), "network none let {accepted} through");
            }
            prop_assert_eq!(repository(&accepted, &roots, &egress), Ok(accepted));
        }
    }
}
