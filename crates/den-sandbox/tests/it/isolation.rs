//! Escape and isolation: everything a sandbox must not be able to do. Each probe prints
//! "ok <name>" when the attempt fails and "LEAK <name>" when it succeeds; the tests assert every
//! probe ran and none leaked, and each has a positive control showing the probe can succeed.

use std::time::Duration;

use crate::harness::Harness;
use den_sandbox::{ExitReason, SandboxRuntime};

/// Runs `cmd` in the sandbox's shell; success means the sandbox could do something it must not.
fn probe(name: &str, cmd: &str) -> String {
    format!("if {cmd} >/dev/null 2>&1; then echo 'LEAK {name}'; else echo 'ok {name}'; fi\n")
}

fn assert_probes(out: &str, names: &[&str]) {
    assert!(!out.contains("LEAK"), "a sandbox escape succeeded:\n{out}");
    for n in names {
        assert!(
            out.lines().any(|l| l == format!("ok {n}")),
            "probe {n} did not run:\n{out}"
        );
    }
}

#[tokio::test]
async fn files_outside_the_sandbox_are_invisible_and_system_dirs_read_only() {
    let h = Harness::new().await;
    let den_data = h.dir.path().join("den-data");
    std::fs::create_dir_all(&den_data).unwrap();
    std::fs::write(den_data.join("den.db"), "secret").unwrap();
    // Another sandbox with a file in its workspace, written before any probe runs: it says
    // "ready" only once the file is written.
    let other =
        h.rt.create(
            h.spec("echo theirs > /workspace/other-secret; echo ready; exec sleep 600"),
            None,
        )
        .await
        .unwrap();
    let state = h.rt.config().root_dir.clone();
    let other_dir = state.join("sandboxes").join(other.id.as_str());
    crate::limits_wait(&other_dir.join("log")).await;
    let other_upper = other_dir.join("ws/upper");
    // The probe's path is where the secret really is: reading it from the host succeeds.
    assert_eq!(
        std::fs::read_to_string(other_upper.join("other-secret")).unwrap(),
        "theirs\n"
    );
    let mut script = String::new();
    // Positive control: the sandbox's own files are readable and writable.
    script.push_str("cat /workspace/README.md && echo mine > /workspace/new && cat /workspace/new && touch /tmp/x /home/agent/x && echo control-ok\n");
    let probes = [
        ("read-root", "ls /root/".to_owned()),
        (
            "read-den-data",
            format!("cat {}/den.db", den_data.display()),
        ),
        ("list-den-state", format!("ls {}", state.display())),
        (
            "read-other-workspace",
            format!("cat {}/other-secret", other_upper.display()),
        ),
        (
            "read-other-via-proc",
            "cat /proc/*/root/workspace/other-secret".to_owned(),
        ),
        (
            "read-host-home",
            "ls /home/ | grep -v agent | grep .".to_owned(),
        ),
        ("read-shadow", "cat /etc/shadow".to_owned()),
        ("write-usr", "touch /usr/den-escape".to_owned()),
        ("write-etc", "touch /etc/den-escape".to_owned()),
        ("write-bin", "touch /bin/den-escape".to_owned()),
        ("new-userns", "unshare -U true".to_owned()),
        ("mount", "mount -t tmpfs none /tmp".to_owned()),
    ];
    for (name, cmd) in &probes {
        script.push_str(&probe(name, cmd));
    }
    let (reason, out) = h.run(h.spec(&script)).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(
        out.contains("seed\nmine\ncontrol-ok"),
        "control failed:\n{out}"
    );
    assert_probes(&out, &probes.map(|p| p.0));
    assert!(!std::path::Path::new("/usr/den-escape").exists());
    h.rt.destroy(&other.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn host_processes_are_invisible_and_the_environment_holds_nothing_of_dens() {
    let h = Harness::new().await;
    let mut spec = h.spec("for c in /proc/[0-9]*/comm; do cat $c; done; echo ---; env");
    spec.env.insert("GIVEN".into(), "1".into());
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    let (procs, env) = out.split_once("---\n").unwrap();
    let names: Vec<&str> = procs.lines().collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| ["bwrap", "sh", "cat"].contains(n)),
        "host processes visible: {names:?}"
    );
    let mut keys: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('=').map(|kv| kv.0))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "GIVEN", "HOME", "LANG", "LOGNAME", "PATH", "PWD", "TMPDIR", "USER"
        ],
        "{env}"
    );
    // The test process itself has cargo's variables; none may appear inside.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(!env.contains("CARGO"), "{env}");
    h.finish().await;
}

/// The host's own non-loopback IPv4 addresses.
fn host_addresses() -> Vec<String> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap();
    let lines: Vec<&str> = trie.lines().collect();
    let mut out = Vec::new();
    for w in lines.windows(2) {
        if w[1].contains("/32 host LOCAL") {
            let addr = w[0].trim().trim_start_matches("|-- ").to_owned();
            if !addr.starts_with("127.") && !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    out
}

#[tokio::test]
async fn host_ports_private_ranges_and_metadata_are_unreachable_but_forwards_work() {
    let h = Harness::new().await;
    let lo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let any = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    lo.set_nonblocking(true).unwrap();
    any.set_nonblocking(true).unwrap();
    let (lo_port, any_port) = (
        lo.local_addr().unwrap().port(),
        any.local_addr().unwrap().port(),
    );
    let addrs = host_addresses();
    assert!(!addrs.is_empty(), "no host address found");
    // Positive control: a forward (host unix socket → sandbox 127.0.0.1:7001) is reachable.
    let sock = h.dir.path().join("gateway.sock");
    let gateway = tokio::net::UnixListener::bind(&sock).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = gateway.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = s.write_all(b"hello-from-gateway\n").await;
        }
    });
    let tcp = |host: &str, port: u16| format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}'");
    let mut names = Vec::new();
    // The host's own address first: if the guard is missing, stop before probing anything that
    // would leave this machine.
    let mut script = String::from("timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/7001; cat <&3'\n");
    for (i, a) in addrs.iter().enumerate() {
        let name = format!("host-ip-{i}");
        let p = probe(&name, &tcp(a, any_port));
        script.push_str(&p.replace("'; else", "'; exit 3; else"));
        names.push(name);
    }
    for (name, host, port) in [
        ("host-loopback", "127.0.0.1", lo_port),
        ("slirp-host-loopback", "10.0.2.2", lo_port),
        ("slirp-host-any", "10.0.2.2", any_port),
        ("metadata", "169.254.169.254", 80),
    ] {
        script.push_str(&probe(name, &tcp(host, port)));
        names.push(name.to_owned());
    }
    let mut spec = h.spec(&script);
    spec.forwards.push(den_sandbox::Forward {
        sandbox_port: 7001,
        host_socket: sock,
    });
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(
        out.contains("hello-from-gateway"),
        "forward control failed:\n{out}"
    );
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_probes(&out, &names);
    assert!(
        lo.accept().is_err() && any.accept().is_err(),
        "a host listener accepted a sandbox connection"
    );
    h.finish().await;
}

#[tokio::test]
async fn sandboxes_cannot_reach_each_other() {
    let h = Harness::new().await;
    let mut spec = h.spec("exec python3 -m http.server 8000 --bind 0.0.0.0");
    spec.expose.push(8000);
    let server = h.rt.create(spec, None).await.unwrap();
    let target = den_sandbox::probe::Target {
        rt: h.rt.as_ref(),
        id: &server.id,
        port: 8000,
        auth: None,
    };
    // Control: den itself reaches the server through the runtime.
    target
        .wait_ready("/", Duration::from_secs(60))
        .await
        .unwrap();
    let host_ip = host_addresses().remove(0);
    let mut script = String::new();
    let names = [
        "peer-loopback",
        "peer-slirp-addr",
        "peer-via-host",
        "peer-via-host-ip",
    ];
    for (name, host) in names
        .iter()
        .zip(["127.0.0.1", "10.0.2.100", "10.0.2.2", host_ip.as_str()])
    {
        script.push_str(&probe(
            name,
            &format!("timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/8000'"),
        ));
    }
    let (reason, out) = h.run(h.spec(&script)).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert_probes(&out, &names);
    h.rt.destroy(&server.id).await.unwrap();
    h.finish().await;
}

#[tokio::test]
async fn network_policy_none_leaves_only_loopback() {
    let h = Harness::new().await;
    let mut spec = h.spec("cat /proc/net/dev");
    spec.network = den_sandbox::NetworkPolicy::None;
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(out.contains("lo:") && !out.contains("tap0"), "{out}");
    let (_, out) = h.run(h.spec("cat /proc/net/dev")).await;
    assert!(
        out.contains("tap0"),
        "with internet policy there is a tap device: {out}"
    );
    h.finish().await;
}

#[tokio::test]
async fn the_environment_never_appears_on_a_host_command_line() {
    let h = Harness::new().await;
    let secret = format!("den-secret-{}", uuid::Uuid::new_v4().simple());
    let mut spec = h.spec("exec sleep 600");
    spec.env.insert("DEN_TEST_SECRET".into(), secret.clone());
    let running = h.rt.create(spec, None).await.unwrap();
    // Every host user can read every process's command line.
    let mut saw_bwrap = false;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        saw_bwrap |= cmdline.contains("--unshare-pid") && cmdline.contains("sleep 600");
        assert!(
            !cmdline.contains(&secret),
            "a sandbox's environment is on a host command line: {cmdline}"
        );
    }
    assert!(
        saw_bwrap,
        "control: the sandbox's bwrap command line was not found"
    );
    h.rt.destroy(&running.id).await.unwrap();
    // Control: the variable still reaches the command.
    let mut spec = h.spec("echo \"seen=$DEN_TEST_SECRET\"");
    spec.env.insert("DEN_TEST_SECRET".into(), secret.clone());
    let (reason, out) = h.run(spec).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    assert!(out.contains(&format!("seen={secret}")), "{out}");
    h.finish().await;
}

#[tokio::test]
async fn etc_holds_only_what_programs_need() {
    // Not the host's gitconfig, in particular, nor anything else of the host's own setup.
    let h = Harness::new().await;
    let (reason, out) = h.run(h.spec("ls -A /etc")).await;
    assert_eq!(reason, ExitReason::Exited { code: 0 }, "{out}");
    let allowed = [
        "passwd",
        "group",
        "hosts",
        "resolv.conf",
        "ssl",
        "ca-certificates",
        "nsswitch.conf",
        "ld.so.cache",
        "alternatives",
        "localtime",
    ];
    let listed: Vec<&str> = out.lines().collect();
    assert!(
        listed.contains(&"passwd"),
        "control: /etc was not listed: {out}"
    );
    for name in &listed {
        assert!(
            allowed.contains(name),
            "/etc/{name} is visible in the sandbox"
        );
    }
    h.finish().await;
}
