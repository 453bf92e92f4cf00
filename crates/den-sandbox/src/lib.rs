//! den's sandbox runtime: isolated sandboxes that run the agent (OpenCode), with resource
//! limits, snapshots and restore.
//!
//! - [`SandboxRuntime`] is the backend-neutral interface; [`LocalRuntime`] is the local Linux
//!   backend (bubblewrap, network namespace + slirp4netns + nftables, cgroups, overlayfs).
//! - [`ArtifactStore`] keeps snapshot archives; [`LocalArtifactStore`] in a directory.
//! - [`doctor_checks`] reports the host prerequisites; [`bench`] starts what `den bench`
//!   needs outside a sandbox (the benchmark repository, OpenCode on the host).
//!
//! This is the only crate of den that starts processes.

mod artifact;
pub mod bench;
mod doctor;
pub mod egress;
mod error;
mod exec;
pub mod local;
pub mod probe;
mod runtime;
mod spec;

pub use artifact::{ArtifactStore, FetchedArtifact, LocalArtifactStore};
pub use doctor::{DoctorCheck, doctor_checks, home_template_in, opencode_bin_in, opencode_version};
pub use error::{Result, SandboxError};
pub use exec::{ExecOutput, ExecRequest};
pub use local::{LocalConfig, LocalRuntime, ReapReport, SandboxStats};
pub use runtime::{
    ArtifactInfo, BoxFuture, BoxStream, ProgressSender, SandboxHandle, SandboxRuntime,
    SandboxStream,
};
pub use spec::{
    CreateProgress, ExitReason, Forward, HOME_DIR, HomeFile, Limits, NetworkPolicy, SandboxId,
    SandboxSpec, SandboxStatus, ToolMount, WORKSPACE_DIR,
};
