//! Self-confinement: once start-up is done (TPM open, listeners bound,
//! privileges dropped), keylet restricts its own file access with Landlock to
//! the paths its configuration names ([`paths::rules`]). The kernel then
//! refuses (EACCES) any other open, whatever keylet's own code would do.
//!
//! Operator scripts (payload script, revocation actions) would inherit the
//! restriction, and they may need to write anywhere (a payload script installs
//! certificates, an action rewrites a configuration): when the configuration
//! runs them and `confine = auto` (the default), keylet stays unconfined, as the
//! reference agent is. With `confine = true` it confines itself and its
//! scripts, whose rules add the system directories read and executed, `/tmp`
//! and the actions directory.
//!
//! Beside Landlock, a seccomp filter ([`syscalls`]) limits the system calls
//! keylet may make from then on, in the same cases.
//!
//! keylet confines itself under a systemd unit too: Landlock and the filter
//! stack on the unit's own sandbox, and only narrow it.

mod paths;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
mod syscalls;

/// Architectures seccompiler does not know: no filter.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
)))]
mod syscalls {
    pub(crate) fn install(_scripts: bool, _probe: bool) -> Result<usize, String> {
        Err(format!(
            "keylet has no seccomp filter for {} (only for x86_64, aarch64 and riscv64)",
            std::env::consts::ARCH
        ))
    }
}

pub(crate) use paths::{Access, Rule, rules, runs_scripts};
pub(crate) use syscalls::install as filter_syscalls;

use landlock::Access as _;
use landlock::{
    ABI, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, RestrictSelfAttr,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
};

use crate::config::{AgentConfig, Confine};
use crate::tpm::TpmDevice;

/// The newest Landlock ABI keylet asks for; older kernels get what they have.
const ABI_WANTED: ABI = ABI::V5;

/// What confinement came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `confine = false`.
    Off,
    /// `confine = auto` and operator scripts enabled: unconfined for them.
    ForScripts,
    /// The kernel enforces the rules: `full`, every access right keylet asked
    /// for (else only those its Landlock ABI knows); `rules`, the paths added;
    /// `others`, threads started before and left unconfined (a kernel before
    /// Landlock ABI 8 confines only the calling thread and its future threads).
    Active {
        full: bool,
        rules: usize,
        others: usize,
    },
    /// The kernel has no Landlock (not built, or not enabled at boot).
    Unsupported,
    /// The kernel refused to create a ruleset (e.g. a seccomp filter of the
    /// service manager forbids the Landlock system calls): the reason.
    Refused(String),
}

fn access(a: Access) -> BitFlags<AccessFs> {
    match a {
        Access::Read => AccessFs::from_read(ABI_WANTED) & !AccessFs::Execute,
        Access::ReadExec => AccessFs::from_read(ABI_WANTED),
        Access::Full => AccessFs::from_all(ABI_WANTED),
        Access::RemoveFile => AccessFs::RemoveFile.into(),
    }
}

/// Whether the running kernel can enforce Landlock rules (restricts nothing).
pub(crate) fn kernel_supports() -> bool {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(Ruleset::create)
        .is_ok()
}

/// Restricts this process to `rules`; an error when the kernel has Landlock
/// but refuses them. Call it from the thread that will spawn every later
/// thread, while it is the only one (or on a kernel that restricts all threads
/// at once).
pub(crate) fn restrict(rules: &[Rule]) -> Result<Outcome, String> {
    let err = |e: &dyn std::fmt::Display| {
        format!("cannot confine keylet with Landlock: {e} (set confine = false to run unconfined)")
    };
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_WANTED))
        .and_then(Ruleset::create);
    let mut created = match created {
        Ok(c) => c,
        Err(e) => return Ok(Outcome::Refused(e.to_string())),
    };
    let mut added = 0;
    for rule in rules {
        let (path, why) = (rule.path.display(), rule.why);
        let Ok(fd) = PathFd::new(&rule.path).inspect_err(|e| {
            log::debug!("confine: {path} ({why}) is not allowed: it cannot be opened now: {e}")
        }) else {
            continue;
        };
        created = created
            .add_rule(PathBeneath::new(fd, access(rule.access)))
            .map_err(|e| err(&format!("{path} ({why}): {e}")))?;
        added += 1;
    }
    let status = created
        .all_threads(true)
        .and_then(|c| c.restrict_self())
        .map_err(|e| err(&e))?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Ok(Outcome::Unsupported);
    }
    // The threads but this one, when the kernel did not restrict them all.
    let others = match std::fs::read_dir("/proc/self/task") {
        Ok(tasks) if !status.all_threads => tasks.count().saturating_sub(1),
        _ => 0,
    };
    Ok(Outcome::Active {
        full: status.ruleset == RulesetStatus::FullyEnforced,
        rules: added,
        others,
    })
}

/// What keylet's seccomp filter does once installed with `calls` (as
/// [`filter_syscalls`] counts them), for the log and the doctor.
pub(crate) fn filter_text(scripts: bool, calls: usize) -> String {
    if scripts {
        format!(
            "{calls} system calls that change the system (mount, modules, kexec, reboot, clocks, \
             ptrace, bpf, namespaces) fail with EPERM, for keylet and its operator scripts"
        )
    } else {
        format!("{calls} system calls allowed, any other fails with EPERM")
    }
}

/// Why `c` leaves keylet unconfined, or `None` when it confines it.
pub(crate) fn unconfined(c: &AgentConfig) -> Option<Outcome> {
    match c.confine {
        Confine::Off => Some(Outcome::Off),
        Confine::UnlessScripts if runs_scripts(c) => Some(Outcome::ForScripts),
        Confine::UnlessScripts | Confine::On => None,
    }
}

/// Confines keylet as `c` says, with `tpm` the device it opened, and logs the
/// outcome; errors as [`restrict`].
pub(crate) fn apply(c: &AgentConfig, tpm: &TpmDevice) -> Result<Outcome, String> {
    let outcome = unconfined(c).map_or_else(|| restrict(&rules(c, tpm)), Ok)?;
    match &outcome {
        Outcome::ForScripts => log::warn!(
            "operator scripts are enabled (enable_payload_script, enable_revocation_actions): \
             keylet runs without Landlock confinement so that they can write where they need; \
             set confine = true to confine keylet and its scripts (which may then write only /tmp)"
        ),
        Outcome::Off => log::warn!("confine = false: keylet runs without Landlock confinement"),
        Outcome::Active {
            full,
            rules,
            others,
        } => {
            let mut notes = String::new();
            if !full {
                notes += " (this kernel's Landlock ABI enforces part of the access rights)";
            }
            if runs_scripts(c) {
                notes +=
                    "; operator scripts may read and execute the system directories and write /tmp";
            }
            if *others > 0 {
                notes += &format!(
                    "; {others} thread(s) started before stay unconfined until they end (this \
                     kernel cannot confine all threads at once)"
                );
            }
            log::info!(
                "confined with Landlock: file access limited to {rules} configured paths{notes}"
            );
        }
        Outcome::Unsupported => log::warn!(
            "this kernel has no Landlock (not built in, or not in the lsm= boot list): keylet runs \
             unconfined"
        ),
        Outcome::Refused(why) => log::warn!(
            "the kernel refused a Landlock ruleset ({why}): keylet runs unconfined (a service \
             manager's own sandbox, e.g. systemd's SystemCallFilter, may forbid Landlock)"
        ),
    }
    if unconfined(c).is_none() {
        let scripts = runs_scripts(c);
        match filter_syscalls(scripts, false) {
            Ok(calls) => log::info!("seccomp filter installed: {}", filter_text(scripts, calls)),
            Err(why) => log::warn!(
                "{why}: keylet runs without it (a kernel without CONFIG_SECCOMP_FILTER, an \
                 emulator, or a service manager's own filter may refuse it)"
            ),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests;
