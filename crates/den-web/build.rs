//! Embeds the built web client (`web/dist`, made by `npm run build` in `web/`).
//!
//! A checkout without `web/dist` still builds: a placeholder page says how to build the client,
//! so Rust-only builds and CI jobs never need Node. Release builds embed the files; debug builds
//! read them from disk at request time (memory-serve's behaviour), with the list of files fixed
//! here, so rebuild den after rebuilding the web client.

use std::path::PathBuf;

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>den</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1rem">
<h1>den is running</h1>
<p>This den was built without its web client. Build the page, then rebuild den:</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build
cargo build --release -p den</pre>
<p><code>scripts/run</code> does both. The API is at <a href="/api/openapi.json">/api/openapi.json</a>.</p>
</body></html>
"#;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = manifest.join("../../web/dist");
    // Watched even when missing: cargo then reruns this script on every build until the client
    // is built, so the real page is picked up without a `cargo clean`.
    println!("cargo::rerun-if-changed={}", dist.display());
    let dir = if dist.join("index.html").is_file() {
        println!("cargo::rustc-cfg=den_web_built");
        dist
    } else {
        let out =
            PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("placeholder");
        std::fs::create_dir_all(&out).expect("create the placeholder directory");
        std::fs::write(out.join("index.html"), PLACEHOLDER).expect("write the placeholder page");
        out
    };
    println!("cargo::rustc-check-cfg=cfg(den_web_built)");
    // memory_serve::load_directory, minus its cargo warning per file (which would show in every
    // build of the workspace): the same generated file, with a silent log.
    // Embed unless the crate being built has debug assertions (the build script's own profile
    // may differ from the crate's, so ask cargo about the target).
    let embed = std::env::var_os("CARGO_CFG_DEBUG_ASSERTIONS").is_none();
    let dir = dir
        .canonicalize()
        .expect("canonicalize the web client directory");
    let label = dir.to_string_lossy().into_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let assets = memory_serve::assets_to_code(&label, &dir, &out, embed, |_| {});
    std::fs::write(
        out.join("memory_serve_assets.rs"),
        format!("&[(\"default\", {assets})]"),
    )
    .expect("write memory_serve_assets.rs");
}
