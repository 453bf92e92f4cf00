//! Property tests (`scripts/fuzz` runs them longer) of the configuration file, which an admin
//! writes by hand: whatever it holds, den either starts with settings it can use or stops with
//! an error; it never panics (an overflowing number of hours once did).

use proptest::prelude::*;

use super::{Overrides, Settings};

/// The keys den reads, by section ("" is the top level).
const KEYS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "data_dir",
            "listen",
            "log_format",
            "public_url",
            "database_url",
            "tools_dir",
        ],
    ),
    (
        "sandbox",
        &[
            "enabled",
            "instance",
            "uid_base",
            "max_concurrent_starts",
            "cpus",
            "memory_mb",
            "pids",
            "lifetime_minutes",
            "idle_timeout_minutes",
            "turn_inactivity_minutes",
            "network",
        ],
    ),
    (
        "auth",
        &[
            "session_ttl_hours",
            "login_link_minutes",
            "max_failed_logins_per_user",
            "max_failed_logins_per_address",
        ],
    ),
    ("live", &["slow_client_ms"]),
    ("models", &["allow_private_endpoints", "monthly_budget_usd"]),
    ("repositories", &["local_roots", "allowed_hosts"]),
    (
        "github",
        &[
            "client_id",
            "client_secret",
            "allowed_logins",
            "scopes",
            "api_url",
            "token_url",
            "authorize_url",
        ],
    ),
    (
        "[providers]",
        &[
            "name",
            "kind",
            "base_url",
            "models",
            "api_key_env",
            "shared",
        ],
    ),
];

/// A TOML value of any type, the awkward ones likely.
fn any_value() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-1".to_owned()),
        Just("0".to_owned()),
        prop_oneof![
            Just("nan"),
            Just("inf"),
            Just("-inf"),
            Just("1e308"),
            Just("-0.0"),
            Just("0.5")
        ]
        .prop_map(str::to_owned),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-zA-Z0-9:/._ \\[\\]-]{0,30}".prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("\"none\""),
            Just("\"internet\""),
            Just("\"json\""),
            Just("\"anthropic\""),
            Just("\"http://127.0.0.1:1/v1\""),
            Just("\"/\""),
            Just("\"\""),
        ]
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        3 => scalar.clone(),
        1 => prop::collection::vec(scalar, 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
        1 => Just("{ a = 1 }".to_owned()),
    ]
}

/// A configuration file: some sections, each with some of its keys (or an unknown one).
fn any_document() -> impl Strategy<Value = String> {
    let line = (
        prop::sample::select(KEYS),
        any::<prop::sample::Index>(),
        any_value(),
        any::<bool>(),
    );
    prop::collection::vec(line, 0..16).prop_map(|lines| {
        let mut top = String::new();
        let mut sections = String::new();
        for ((section, keys), index, value, unknown) in lines {
            let key = if unknown {
                "surprise"
            } else {
                keys[index.index(keys.len())]
            };
            match section {
                "" => top.push_str(&format!("{key} = {value}\n")),
                "[providers]" => sections.push_str(&format!("[[providers]]\n{key} = {value}\n")),
                name => sections.push_str(&format!("[{name}]\n{key} = {value}\n")),
            }
        }
        top + &sections
    })
}

proptest! {
    #[test]
    fn any_configuration_file_loads_or_is_refused_without_a_panic(
        text in prop_oneof![4 => any_document(), 1 => ".{0,200}"],
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("den.toml");
        std::fs::write(&file, &text).expect("the file");
        let overrides = Overrides { config: Some(file), ..Overrides::default() };
        if let Ok(settings) = Settings::load(&overrides) {
            // What den derives from the settings at start must not panic either.
            let _ = crate::cli::serve::server_config(&settings, settings.public_url());
            let _ = crate::cli::sessions::catalog(&settings);
            let _ = settings.database_url();
        }
    }
}
