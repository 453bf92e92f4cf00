//! The nftables guard on sandbox traffic.
//!
//! A sandbox's packets leave the host through slirp4netns, i.e. as ordinary sockets of a host
//! process. slirp's `--disable-host-loopback` stops 10.0.2.2 → host 127.0.0.1, but services bound
//! to 0.0.0.0 on the host's own address stay reachable, and so are private networks and the cloud
//! metadata address. All slirp4netns processes of one den instance run in one cgroup2 directory,
//! and this table rejects their traffic to those destinations (`socket cgroupv2` matches the
//! cgroup of the sending socket). DNS to the host's configured resolvers is the one exception:
//! slirp forwards the sandbox's DNS there, and those are often private addresses. The ranges
//! are `egress`'s, so host-side work on a user's behalf follows the very same rules.

use std::net::IpAddr;

use tokio::io::AsyncWriteExt;

use crate::error::{IoContext, Result, SandboxError};

pub(crate) fn table_name(instance: &str) -> String {
    instance.replace('-', "_")
}

/// The ruleset for one instance; `cgroup` and `level` as from `CgroupLayout::nft_cgroup_ref`.
pub(crate) fn ruleset(table: &str, cgroup: &str, level: usize, resolvers: &[IpAddr]) -> String {
    let v4: Vec<String> = resolvers
        .iter()
        .filter(|a| a.is_ipv4())
        .map(ToString::to_string)
        .collect();
    let v6: Vec<String> = resolvers
        .iter()
        .filter(|a| a.is_ipv6())
        .map(ToString::to_string)
        .collect();
    let mut dns = String::new();
    for (family, list) in [("ip", v4), ("ip6", v6)] {
        if !list.is_empty() {
            let set = list.join(", ");
            dns.push_str(&format!(
                "    {family} daddr {{ {set} }} udp dport 53 accept\n    {family} daddr {{ {set} }} tcp dport 53 accept\n"
            ));
        }
    }
    let v4_ranges = crate::egress::FORBIDDEN_V4
        .iter()
        .map(|(net, len, _)| format!("{net}/{len}"))
        .collect::<Vec<_>>()
        .join(", ");
    let v6_ranges = crate::egress::FORBIDDEN_V6
        .iter()
        .map(|(net, len, _)| format!("{net}/{len}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "table inet {table} {{
  chain output {{
    type filter hook output priority 0; policy accept;
    socket cgroupv2 level {level} \"{cgroup}\" jump sandbox
  }}
  chain sandbox {{
{dns}    fib daddr type local reject
    ip daddr {{ {v4_ranges} }} reject
    ip6 daddr {{ {v6_ranges} }} reject
  }}
}}
"
    )
}

/// The host's DNS resolvers, from /etc/resolv.conf.
pub(crate) fn resolvers() -> Vec<IpAddr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse().ok())
        .collect()
}

#[expect(
    clippy::disallowed_methods,
    reason = "den-sandbox runs nft to install the guard"
)]
async fn nft(args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .ctx(|| "run nft (is nftables installed?)".into())?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .ctx(|| "write to nft".into())?;
    }
    child.wait_with_output().await.ctx(|| "run nft".into())
}

/// Replaces the instance's table with a fresh one (atomically: one nft transaction).
pub(crate) async fn install(table: &str, rules: &str) -> Result<()> {
    remove(table).await?;
    let out = nft(&["-f", "-"], Some(rules)).await?;
    if !out.status.success() {
        return Err(SandboxError::Command {
            command: "nft -f -".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// The names of den's tables (`densbx_*`) on the host, of every instance.
pub(crate) async fn tables() -> Result<Vec<String>> {
    let out = nft(&["list", "tables", "inet"], None).await?;
    if !out.status.success() {
        return Err(SandboxError::Command {
            command: "nft list tables inet".into(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("table inet "))
        .filter(|name| name.starts_with("densbx_"))
        .map(str::to_owned)
        .collect())
}

/// The ruleset of `table` as nft prints it; `None` when there is no such table.
pub(crate) async fn list(table: &str) -> Result<Option<String>> {
    let out = nft(&["list", "table", "inet", table], None).await?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The cgroup (relative to /sys/fs/cgroup) whose sockets a listed ruleset guards.
pub(crate) fn guarded_cgroup(rules: &str) -> Option<String> {
    let rest = rules.split("socket cgroupv2 level ").nth(1)?;
    let quoted = rest.split('"').nth(1)?;
    Some(quoted.to_owned())
}

pub(crate) async fn exists(table: &str) -> Result<bool> {
    Ok(list(table).await?.is_some())
}

pub(crate) async fn remove(table: &str) -> Result<()> {
    if exists(table).await? {
        let out = nft(&["delete", "table", "inet", table], None).await?;
        if !out.status.success() {
            return Err(SandboxError::Command {
                command: format!("nft delete table inet {table}"),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guarded_cgroup_is_read_back_from_a_ruleset() {
        let r = ruleset("densbx_x", "unified/densbx-x/slirp", 2, &[]);
        assert_eq!(
            guarded_cgroup(&r).as_deref(),
            Some("unified/densbx-x/slirp")
        );
        assert_eq!(guarded_cgroup("table inet other {}"), None);
    }

    #[test]
    fn ruleset_allows_dns_and_rejects_private_and_local() {
        let r = ruleset(
            "densbx_x",
            "unified/densbx-x/slirp",
            2,
            &["10.1.2.3".parse().unwrap()],
        );
        assert!(r.contains("socket cgroupv2 level 2 \"unified/densbx-x/slirp\" jump sandbox"));
        assert!(r.contains("ip daddr { 10.1.2.3 } udp dport 53 accept"));
        assert!(r.contains("fib daddr type local reject"));
        assert!(r.contains("169.254.0.0/16"));
        let dns = r.find("dport 53").unwrap();
        assert!(
            dns < r.find("10.0.0.0/8").unwrap(),
            "the DNS exception must come first"
        );
    }
}
