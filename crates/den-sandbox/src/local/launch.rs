//! Lays out a sandbox's directories and starts bubblewrap in them.
//!
//! bwrap runs as the sandbox's own unprivileged host uid (never as root: then the sandbox's uid
//! would map to host root), in the network namespace and cgroups den prepared, with the mounts
//! of `mounts::MountPlan` made just before. Its flags are the ones the spike verified.

#![expect(
    unsafe_code,
    reason = "pre_exec: join namespaces and cgroups, then drop privileges"
)]

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use nix::libc;

use crate::error::{IoContext, Result};
use crate::local::mounts::{MountPlan, idmap_userns};
use crate::local::seccomp;
use crate::spec::{HOME_DIR, NetworkPolicy, SandboxSpec, WORKSPACE_DIR};

/// Paths of one sandbox's state on the host.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
}

impl Layout {
    pub(crate) fn ws(&self, part: &str) -> PathBuf {
        self.dir.join("ws").join(part)
    }
    pub(crate) fn home(&self, part: &str) -> PathBuf {
        self.dir.join("home").join(part)
    }
    pub(crate) fn run(&self) -> PathBuf {
        self.dir.join("run")
    }
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("log")
    }
    fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
    fn tool(&self, i: usize) -> PathBuf {
        self.dir.join("tools").join(i.to_string())
    }

    /// Creates the directories. The upper layers may already hold a restored snapshot.
    pub(crate) fn create(&self, uid: u32, spec: &SandboxSpec) -> Result<()> {
        let mk = |p: &Path, mode: u32| -> Result<()> {
            std::fs::create_dir_all(p).ctx(|| format!("create {}", p.display()))?;
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                .ctx(|| format!("chmod {}", p.display()))
        };
        // 0711: bwrap, running as the sandbox uid, must traverse to the mount points.
        mk(&self.dir, 0o711)?;
        for part in ["ws", "home"] {
            mk(&self.dir.join(part), 0o711)?;
            for sub in ["lower", "work", "merged"] {
                mk(&self.dir.join(part).join(sub), 0o711)?;
            }
            let upper = self.dir.join(part).join("upper");
            mk(&upper, 0o755)?;
            chown(&upper, Some(uid), Some(uid)).ctx(|| format!("chown {}", upper.display()))?;
        }
        mk(&self.run(), 0o700)?;
        mk(&self.etc(), 0o755)?;
        let resolv = match spec.network {
            // slirp4netns's built-in DNS forwarder.
            NetworkPolicy::Internet => "nameserver 10.0.2.3\n",
            NetworkPolicy::None => "",
        };
        let files = [
            (
                "passwd",
                "root:x:0:0::/root:/usr/sbin/nologin\nagent:x:1000:1000:agent:/home/agent:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
            ),
            ("group", "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n"),
            (
                "hosts",
                "127.0.0.1 localhost sandbox\n::1 localhost ip6-localhost\n",
            ),
            ("resolv.conf", resolv),
        ];
        for (name, text) in files {
            let p = self.etc().join(name);
            std::fs::write(&p, text).ctx(|| format!("write {}", p.display()))?;
        }
        for (i, t) in spec.tools.iter().enumerate() {
            let staging = self.tool(i);
            std::fs::create_dir_all(self.dir.join("tools")).ctx(|| "create tools dir".into())?;
            if t.host_path.is_dir() {
                mk(&staging, 0o755)?;
            } else {
                std::fs::write(&staging, b"").ctx(|| format!("create {}", staging.display()))?;
            }
        }
        for f in &spec.home_files {
            let dest = self.home("upper").join(&f.path);
            let mut parent = dest.parent().map(Path::to_path_buf);
            let mut made = Vec::new();
            while let Some(p) = parent.filter(|p| !p.exists()) {
                made.push(p.clone());
                parent = p.parent().map(Path::to_path_buf);
            }
            for p in made.iter().rev() {
                std::fs::create_dir(p).ctx(|| format!("create {}", p.display()))?;
                chown(p, Some(uid), Some(uid)).ctx(|| format!("chown {}", p.display()))?;
            }
            std::fs::write(&dest, &f.contents).ctx(|| format!("write {}", dest.display()))?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(f.mode))
                .ctx(|| format!("chmod {}", dest.display()))?;
            chown(&dest, Some(uid), Some(uid)).ctx(|| format!("chown {}", dest.display()))?;
        }
        Ok(())
    }
}

pub(crate) struct Launch<'a> {
    pub(crate) bwrap: &'a Path,
    pub(crate) layout: &'a Layout,
    pub(crate) spec: &'a SandboxSpec,
    pub(crate) home_lower: &'a Path,
    /// An empty directory: the workspace of a sandbox whose workspace comes later.
    pub(crate) empty: &'a Path,
    pub(crate) uid: u32,
    pub(crate) netns: &'a OwnedFd,
    pub(crate) cgroup_procs: Vec<std::fs::File>,
}

impl Launch<'_> {
    fn args(&self, seccomp_fds: [RawFd; 2]) -> Vec<String> {
        let l = self.layout;
        let mut a: Vec<String> = [
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--uid",
            "1000",
            "--gid",
            "1000",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        .map(String::from)
        .to_vec();
        // Only what programs need to run and speak TLS; nothing of the host's own setup
        // (its gitconfig, for one, may name internal hosts or credential helpers).
        for f in [
            "ssl",
            "ca-certificates",
            "nsswitch.conf",
            "ld.so.cache",
            "alternatives",
            "localtime",
        ] {
            a.extend([
                "--ro-bind-try".into(),
                format!("/etc/{f}"),
                format!("/etc/{f}"),
            ]);
        }
        for f in ["passwd", "group", "hosts", "resolv.conf"] {
            let src = l.etc().join(f).display().to_string();
            a.extend(["--ro-bind".into(), src, format!("/etc/{f}")]);
        }
        // A sandbox whose workspace comes later starts with an empty, read-only one (the
        // workspace overlay is mounted over it from outside: `attach::attach_workspace`), and
        // runs its command in /tmp, so nothing holds on to the empty directory.
        let (workspace_source, workdir) = if self.spec.workspace_later {
            (self.empty.display().to_string(), "/tmp")
        } else {
            (l.ws("merged").display().to_string(), WORKSPACE_DIR)
        };
        a.extend([
            if self.spec.workspace_later {
                "--ro-bind".into()
            } else {
                "--bind".into()
            },
            workspace_source,
            WORKSPACE_DIR.into(),
        ]);
        a.extend([
            "--bind".into(),
            l.home("merged").display().to_string(),
            HOME_DIR.into(),
        ]);
        for (i, t) in self.spec.tools.iter().enumerate() {
            a.extend([
                "--ro-bind".into(),
                l.tool(i).display().to_string(),
                t.sandbox_path.display().to_string(),
            ]);
        }
        // The root itself (bwrap's tmpfs holding /etc and the mount points) becomes read-only;
        // /workspace, HOME and /tmp keep their own writable mounts.
        a.extend(["--remount-ro".into(), "/".into()]);
        a.extend(["--chdir".into(), workdir.into()]);
        // Installed by bwrap just before it runs the command (see `seccomp`).
        for fd in seccomp_fds {
            a.extend(["--add-seccomp-fd".into(), fd.to_string()]);
        }
        a.extend([
            "--die-with-parent".into(),
            "--new-session".into(),
            "--".into(),
        ]);
        a.extend(self.spec.command.iter().cloned());
        a
    }

    /// The command's environment. It is bwrap's own (bwrap passes its environment on), never
    /// `--setenv` arguments: a command line is readable by every user of the host in
    /// `/proc/<pid>/cmdline`, and the environment holds secrets (OpenCode's server password);
    /// `/proc/<pid>/environ` is readable only by the sandbox's own uid.
    fn env(&self) -> Vec<(String, String)> {
        let base = [
            ("HOME", HOME_DIR),
            ("USER", "agent"),
            ("LOGNAME", "agent"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("TMPDIR", "/tmp"),
        ];
        let mut env: Vec<(String, String)> = base
            .iter()
            .filter(|(k, _)| !self.spec.env.contains_key(*k))
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.extend(self.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Starts bwrap. The child is in the sandbox's cgroups before it executes anything.
    #[expect(clippy::disallowed_methods, reason = "den-sandbox starts the sandbox")]
    pub(crate) fn spawn(self) -> Result<tokio::process::Child> {
        let l = self.layout;
        let mut plan = MountPlan::new(idmap_userns(self.uid)?);
        if !self.spec.workspace_later {
            plan.overlay(
                &self.spec.workspace,
                &l.ws("lower"),
                &l.ws("upper"),
                &l.ws("work"),
                &l.ws("merged"),
            )?;
        }
        plan.overlay(
            self.home_lower,
            &l.home("lower"),
            &l.home("upper"),
            &l.home("work"),
            &l.home("merged"),
        )?;
        for (i, t) in self.spec.tools.iter().enumerate() {
            plan.bind(&t.host_path, &l.tool(i))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(l.log())
            .ctx(|| format!("open {}", l.log().display()))?;
        let log2 = log.try_clone().ctx(|| "dup log".into())?;
        let filters = seccomp::filters()?;
        let seccomp = [
            seccomp::memfd(&filters.refuse)?,
            seccomp::memfd(&filters.unimplemented)?,
        ];
        let seccomp_fds = [seccomp[0].as_raw_fd(), seccomp[1].as_raw_fd()];
        let mut cmd = tokio::process::Command::new(self.bwrap);
        cmd.args(self.args(seccomp_fds))
            .env_clear()
            .envs(self.env())
            .current_dir("/")
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            .kill_on_drop(true);
        let netns = self.netns.as_raw_fd();
        let procs = self.cgroup_procs;
        let uid = self.uid;
        // SAFETY: the closure only makes async-signal-safe syscalls on data prepared above
        // (see MountPlan::apply); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let check = |r: libc::c_int| {
                    if r < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                };
                plan.apply()?;
                // bwrap reads the filters from these descriptors: keep them open across exec.
                for fd in seccomp_fds {
                    check(libc::fcntl(fd, libc::F_SETFD, 0))?;
                }
                check(libc::setns(netns, libc::CLONE_NEWNET))?;
                for f in &procs {
                    if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setresgid(uid, uid, uid))?;
                check(libc::setresuid(uid, uid, uid))?;
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .ctx(|| format!("start {}", self.bwrap.display()));
        // bwrap holds its own copies now.
        drop(seccomp);
        child
    }
}
