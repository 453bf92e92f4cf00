//! The seccomp filters every sandboxed process runs under: the agent's (through bwrap's
//! `--add-seccomp-fd`) and every command den runs inside a sandbox (applied just before exec).
//!
//! In the spirit of Docker's default profile, on top of what the namespaces already stop: the
//! calls that reach kernel state no namespace isolates (the keyring, BPF, perf, the kernel log,
//! modules, swap, the clock), that attack the kernel more than they serve a build
//! (userfaultfd, io_uring), that inspect other processes (ptrace), and that would build new
//! namespaces or mounts. Everything else is allowed: a denylist keeps OpenCode, git, bash,
//! node, python and build tools working without a catalogue of what each one calls.
//!
//! Two filters, because seccompiler gives one filter one answer: the first answers EPERM (what
//! a tool sees when it lacks a privilege, and handles); the second answers ENOSYS to `clone3`
//! (its flags sit in memory a filter cannot read, and ENOSYS makes libc fall back to `clone`,
//! whose flags the first filter checks) and to the x32 ABI's numbers (the same architecture
//! with a high bit set: a way around a denylist on kernels that enable it). A process of
//! another architecture (32-bit calls on x86_64) is killed by the first filter.

#![expect(
    unsafe_code,
    reason = "seccomp(2) in a child about to exec, with a program shared across the fork"
)]

use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use crate::error::{Result, SandboxError};

/// Calls refused outright with EPERM.
const DENIED: &[libc::c_long] = &[
    // Other processes' memory and state (the pid namespace hides the host's; this stops the
    // rest, and ptrace-based escapes through a shared process).
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kcmp,
    // Kernel state no namespace isolates.
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_syslog,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
    libc::SYS_uselib,
    // The machine itself.
    libc::SYS_reboot,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    // Much kernel attack surface for little a build needs.
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Files by handle, past every mount and path check (the "shocker" escape).
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    // Mounts and namespaces: the sandbox's are fixed when it starts.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_setns,
];

/// The flags that make `clone` or `unshare` build a namespace.
const CLONE_NAMESPACES: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `unshare` also takes this one (for `clone`, the same bit is part of the exit signal).
const CLONE_NEWTIME: u64 = 0x80;

/// The x32 ABI's marker bit in a system call number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The two programs, built once.
pub(crate) struct Filters {
    pub(crate) refuse: BpfProgram,
    pub(crate) unimplemented: BpfProgram,
}

/// The filters, or why they could not be built (an architecture seccompiler does not know).
pub(crate) fn filters() -> Result<&'static Filters> {
    static FILTERS: OnceLock<std::result::Result<Filters, String>> = OnceLock::new();
    FILTERS
        .get_or_init(build)
        .as_ref()
        .map_err(|err| SandboxError::Seccomp(err.clone()))
}

fn build() -> std::result::Result<Filters, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|err| err.to_string())?;
    let flag_rules = |flags: &[u64]| -> std::result::Result<Vec<SeccompRule>, String> {
        flags
            .iter()
            .map(|&flag| {
                let condition = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )
                .map_err(|err| err.to_string())?;
                SeccompRule::new(vec![condition]).map_err(|err| err.to_string())
            })
            .collect()
    };
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&call| (call, Vec::new())).collect();
    rules.insert(libc::SYS_clone, flag_rules(&CLONE_NAMESPACES)?);
    let mut unshare_flags = CLONE_NAMESPACES.to_vec();
    unshare_flags.push(CLONE_NEWTIME);
    rules.insert(libc::SYS_unshare, flag_rules(&unshare_flags)?);
    let refuse = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(|err| err.to_string())?;
    Ok(Filters {
        refuse,
        unimplemented: unimplemented_program(audit_arch(arch)),
    })
}

/// `AUDIT_ARCH_*` of `arch` (linux/audit.h).
fn audit_arch(arch: TargetArch) -> u32 {
    match arch {
        TargetArch::x86_64 => 0xc000_003e,
        TargetArch::aarch64 => 0xc000_00b7,
        TargetArch::riscv64 => 0xc000_00f3,
    }
}

/// ENOSYS for `clone3` and for x32 numbers; everything else passes to the other filter.
fn unimplemented_program(arch: u32) -> BpfProgram {
    const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JUMP_EQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JUMP_GE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // Offsets into `struct seccomp_data`.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    let op = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    vec![
        /* 0 */ op(LOAD_WORD, 0, 0, ARCH),
        // Another architecture: the other filter kills it; nothing to add here.
        /* 1 */
        op(JUMP_EQ, 0, 3, arch),
        /* 2 */ op(LOAD_WORD, 0, 0, NR),
        /* 3 */ op(JUMP_EQ, 2, 0, libc::SYS_clone3 as u32),
        /* 4 */ op(JUMP_GE, 1, 0, X32_SYSCALL_BIT),
        /* 5 */ op(RETURN, 0, 0, libc::SECCOMP_RET_ALLOW),
        /* 6 */ op(RETURN, 0, 0, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]
}

/// A program as bwrap reads it from a file descriptor: the raw instructions.
pub(crate) fn memfd(program: &BpfProgram) -> Result<OwnedFd> {
    use std::io::{Seek, Write};
    let fd = nix::sys::memfd::memfd_create(c"den-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(|err| SandboxError::Seccomp(format!("memfd_create: {err}")))?;
    let mut file = std::fs::File::from(fd);
    let bytes: Vec<u8> = program
        .iter()
        .flat_map(|i| {
            let mut b = Vec::with_capacity(8);
            b.extend(i.code.to_ne_bytes());
            b.push(i.jt);
            b.push(i.jf);
            b.extend(i.k.to_ne_bytes());
            b
        })
        .collect();
    file.write_all(&bytes)
        .and_then(|()| file.rewind())
        .map_err(|err| SandboxError::Seccomp(format!("write the filter: {err}")))?;
    Ok(OwnedFd::from(file))
}

/// The kernel's view of a filter, for `seccomp(2)` in a child about to exec.
pub(crate) struct KernelProgram(libc::sock_fprog);

// SAFETY: it points into one of the `'static` filters, which nothing ever changes.
unsafe impl Send for KernelProgram {}
// SAFETY: as above.
unsafe impl Sync for KernelProgram {}

pub(crate) fn kernel_program(program: &'static BpfProgram) -> KernelProgram {
    KernelProgram(libc::sock_fprog {
        len: u16::try_from(program.len()).unwrap_or(u16::MAX),
        // seccompiler's `sock_filter` has the kernel's layout (linux/filter.h).
        filter: program.as_ptr().cast_mut().cast(),
    })
}

/// Installs `program` on the calling thread. For `pre_exec`: one system call, no allocation;
/// the caller has set `PR_SET_NO_NEW_PRIVS`. Returns -1 with `errno` set on failure.
pub(crate) fn install(program: &KernelProgram) -> libc::c_int {
    let flags: libc::c_ulong = 0;
    // SAFETY: the kernel only reads the program, valid for as long as the process lives.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::from_ref(&program.0),
        )
    };
    if r < 0 { -1 } else { 0 }
}
