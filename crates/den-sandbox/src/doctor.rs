//! Host prerequisite checks for `den doctor`: each says what is wrong and how to fix it.

use std::path::{Path, PathBuf};

use crate::local::CgroupProbe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorCheck {
    pub name: String,
    pub ok: bool,
    /// What was found (a version, a path) or what went wrong.
    pub detail: String,
    /// What to do when `ok` is false.
    pub fix: String,
}

/// Where `scripts/install-opencode` puts OpenCode `version` inside a tools directory.
pub fn opencode_bin_in(tools_dir: &Path, version: &str) -> PathBuf {
    tools_dir.join(format!(
        "opencode-{version}/node_modules/opencode-linux-x64/bin/opencode"
    ))
}

/// Where `scripts/install-opencode-home` puts the HOME template of OpenCode `version` inside a
/// tools directory.
pub fn home_template_in(tools_dir: &Path, version: &str) -> PathBuf {
    tools_dir.join(format!("opencode-home-{version}"))
}

#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox runs tools to read their versions"
)]
fn version_of(program: &Path, arg: &str) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .arg(arg)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().unwrap_or_default().trim().to_owned();
    if out.status.success() && !first.is_empty() {
        Ok(first)
    } else {
        Err(format!(
            "{} {arg} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The version the OpenCode binary at `bin` reports.
pub fn opencode_version(bin: &Path) -> Result<String, String> {
    version_of(bin, "--version")
}

fn check(name: &str, r: Result<String, String>, fix: &str) -> DoctorCheck {
    let ok = r.is_ok();
    DoctorCheck {
        name: name.to_owned(),
        ok,
        detail: r.unwrap_or_else(|e| e),
        fix: if ok { String::new() } else { fix.to_owned() },
    }
}

/// Checks everything the local backend needs. `tools_dir` holds OpenCode (`opencode_version`,
/// the one the caller pins) and its HOME template.
pub fn doctor_checks(tools_dir: &Path, opencode_version: &str) -> Vec<DoctorCheck> {
    let apt = |pkg: &str| format!("apt-get install -y {pkg}");
    let mut checks = vec![
        check(
            "running as root",
            if nix::unistd::geteuid().is_root() {
                Ok("uid 0".into())
            } else {
                Err("den's local sandboxes need root (namespaces, cgroups, nftables)".into())
            },
            "run den as root",
        ),
        check(
            "bubblewrap",
            version_of(Path::new("bwrap"), "--version"),
            &apt("bubblewrap"),
        ),
        check(
            "slirp4netns",
            version_of(Path::new("slirp4netns"), "--version"),
            &apt("slirp4netns"),
        ),
        check(
            "nftables",
            version_of(Path::new("nft"), "--version"),
            &apt("nftables"),
        ),
        check(
            "git",
            version_of(Path::new("git"), "--version"),
            &apt("git"),
        ),
        check(
            "tar",
            version_of(Path::new("tar"), "--version"),
            &apt("tar"),
        ),
        check(
            "zstd",
            version_of(Path::new("zstd"), "--version"),
            &apt("zstd"),
        ),
        check(
            "user namespaces",
            match std::fs::read_to_string("/proc/sys/user/max_user_namespaces") {
                Ok(n) if n.trim().parse::<u64>().unwrap_or(0) > 0 => {
                    Ok(format!("max_user_namespaces = {}", n.trim()))
                }
                _ => Err("user namespaces are disabled".into()),
            },
            "sysctl -w user.max_user_namespaces=65536",
        ),
        check(
            "/dev/net/tun",
            if Path::new("/dev/net/tun").exists() {
                Ok("present".into())
            } else {
                Err("missing (slirp4netns needs it)".into())
            },
            "modprobe tun",
        ),
        check(
            "cgroups (cpu, memory, pids, cgroup2 freeze/kill)",
            CgroupProbe::describe(),
            "mount cgroup2 (hybrid or unified) with the cpu, memory and pids controllers available",
        ),
    ];
    let pinned = opencode_version;
    let bin = opencode_bin_in(tools_dir, pinned);
    let oc = match self::opencode_version(&bin) {
        Ok(v) if v == pinned => Ok(format!("{v} at {}", bin.display())),
        Ok(v) => Err(format!("{} reports {v}, den needs {pinned}", bin.display())),
        Err(e) => Err(e),
    };
    checks.push(check("OpenCode", oc, "scripts/install-opencode"));
    let tmpl = home_template_in(tools_dir, pinned);
    checks.push(check(
        "OpenCode HOME template",
        if tmpl
            .join(".config/opencode/node_modules/@opencode-ai/plugin")
            .is_dir()
        {
            Ok(tmpl.display().to_string())
        } else {
            Err(format!("{} is missing", tmpl.display()))
        },
        "scripts/install-opencode-home",
    ));
    checks
}
