//! The seccomp filter keylet installs beside Landlock: once start-up is done,
//! the kernel refuses (EPERM) every system call outside the list keylet uses
//! from then on (serving, quoting, reloading, registering again, writing its
//! state). Start-up's own calls (mount, setuid, bind, execve...) are not in it.
//!
//! With operator scripts confined too (`confine = true`), the scripts inherit
//! the filter and may run anything: the filter then refuses only the calls
//! that change the system under them (mounts, modules, kexec, reboot, swap,
//! clocks, tracing other processes, BPF, namespaces), and allows the rest.
//!
//! The filter is made by seccompiler, which knows x86_64, aarch64 and
//! riscv64; on other architectures (armv7) keylet has Landlock only, and this
//! module is not built.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Collects `libc::SYS_*` numbers by name.
macro_rules! sys {
    ($($name:ident),* $(,)?) => {
        &[$(libc::$name),*]
    };
}

/// What keylet calls after start-up, on every architecture: files are the
/// state, logs, certificates on reload and the TPM device; sockets the agent
/// API, the registrar and verifier and name resolution.
#[rustfmt::skip]
const OWN: &[libc::c_long] = sys![
    // memory, threads, signals
    SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise,
    SYS_clone, SYS_clone3, SYS_futex, SYS_set_robust_list, SYS_set_tid_address,
    SYS_rseq, SYS_sched_yield, SYS_sched_getaffinity, SYS_membarrier,
    SYS_exit, SYS_exit_group, SYS_gettid, SYS_getpid, SYS_tgkill, SYS_kill,
    SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack,
    SYS_prctl, SYS_prlimit64, SYS_getrandom, SYS_uname,
    SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid,
    // time
    SYS_clock_gettime, SYS_clock_getres, SYS_gettimeofday, SYS_nanosleep,
    SYS_clock_nanosleep,
    // files
    SYS_openat, SYS_close, SYS_read, SYS_write, SYS_readv, SYS_writev,
    SYS_pread64, SYS_pwrite64, SYS_lseek, SYS_fstat, SYS_newfstatat, SYS_statx,
    SYS_fstatfs, SYS_statfs, SYS_faccessat, SYS_faccessat2, SYS_readlinkat,
    SYS_getdents64, SYS_mkdirat, SYS_unlinkat, SYS_renameat2,
    SYS_fchmod, SYS_fchmodat, SYS_fchown, SYS_fsync, SYS_fdatasync,
    SYS_ftruncate, SYS_fcntl, SYS_ioctl, SYS_flock, SYS_getcwd, SYS_umask,
    SYS_dup, SYS_dup3, SYS_pipe2,
    // sockets and readiness
    SYS_socket, SYS_socketpair, SYS_connect, SYS_accept4, SYS_getsockname,
    SYS_getpeername, SYS_getsockopt, SYS_setsockopt, SYS_sendto, SYS_recvfrom,
    SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown,
    SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_pwait, SYS_eventfd2,
    SYS_ppoll, SYS_pselect6,
];

/// The same calls under their older names, where the architecture has them
/// (glibc and musl still use some of them on x86_64); riscv64 has none.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const OWN_ARCH: &[libc::c_long] = sys![
    SYS_arch_prctl, SYS_open, SYS_stat, SYS_lstat, SYS_access, SYS_readlink,
    SYS_rename, SYS_renameat, SYS_unlink, SYS_mkdir, SYS_chmod, SYS_poll,
    SYS_select, SYS_epoll_wait, SYS_epoll_create, SYS_eventfd, SYS_pipe,
    SYS_dup2, SYS_getdents, SYS_accept, SYS_time,
];
#[cfg(target_arch = "aarch64")]
const OWN_ARCH: &[libc::c_long] = sys![SYS_renameat];
#[cfg(target_arch = "riscv64")]
const OWN_ARCH: &[libc::c_long] = &[];

/// What an operator script confined with keylet may not call: the system
/// under it stays as it is.
#[rustfmt::skip]
const FOR_SCRIPTS_DENIED: &[libc::c_long] = sys![
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_move_mount, SYS_open_tree,
    SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick, SYS_swapon,
    SYS_swapoff, SYS_reboot, SYS_kexec_load,
    SYS_init_module, SYS_finit_module, SYS_delete_module, SYS_ptrace,
    SYS_process_vm_readv, SYS_process_vm_writev, SYS_bpf, SYS_perf_event_open,
    SYS_acct, SYS_settimeofday, SYS_clock_settime, SYS_clock_adjtime,
    SYS_adjtimex, SYS_sethostname, SYS_setdomainname, SYS_userfaultfd,
    SYS_open_by_handle_at, SYS_syslog, SYS_quotactl, SYS_vhangup, SYS_unshare,
    SYS_setns,
];

/// kexec from a file and port I/O, where libc names them (x86_64).
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = sys![SYS_kexec_file_load, SYS_iopl, SYS_ioperm];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_ARCH: &[libc::c_long] = &[];

/// The filter for this architecture, keylet's own or with operator scripts
/// (`scripts`), and how many calls it names (each once). An error is a defect
/// of keylet's: a filter seccompiler cannot compile.
pub(crate) fn program(scripts: bool) -> Result<(BpfProgram, usize), String> {
    let eperm = SeccompAction::Errno(libc::EPERM.unsigned_abs());
    let (common, arch, mismatch, matched) = if scripts {
        (FOR_SCRIPTS_DENIED, DENIED_ARCH, SeccompAction::Allow, eperm)
    } else {
        (OWN, OWN_ARCH, eperm, SeccompAction::Allow)
    };
    let rules: BTreeMap<i64, Vec<_>> = common.iter().chain(arch).map(|&nr| (nr, vec![])).collect();
    let len = rules.len();
    // This build's architecture, which seccompiler knows (the module is built only for those).
    TargetArch::try_from(std::env::consts::ARCH)
        .and_then(|arch| SeccompFilter::new(rules, mismatch, matched, arch))
        .and_then(BpfProgram::try_from)
        .map(|program| (program, len))
        .map_err(|e| format!("cannot build the seccomp filter: {e}"))
}

/// Installs the filter (see [`program`]) on every thread of keylet (and so
/// on every process it starts later), or with `probe` on a thread of its own
/// that ends at once (a filter installed without TSYNC binds the calling
/// thread only): whether the kernel takes it, without filtering keylet itself.
/// Returns how many calls it names, or why there is none (the kernel or an
/// emulator such as qemu-user refused it; other architectures have none).
pub(crate) fn install(scripts: bool, probe: bool) -> Result<usize, String> {
    let (program, len) = program(scripts)?;
    let applied = if probe {
        std::thread::spawn(move || seccompiler::apply_filter(&program).map_err(|e| e.to_string()))
            .join()
            .unwrap_or_else(|_| Err("the probe thread panicked".to_owned()))
    } else {
        seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())
    };
    applied
        .map(|()| len)
        .map_err(|e| format!("the kernel refused keylet's seccomp filter ({e})"))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// keylet's own filter, installed on a thread of its own (a filter without
    /// TSYNC binds that thread alone): keylet's work goes through, and the kernel
    /// refuses what keylet never does after start-up, starting a program or
    /// opening a new listener.
    #[test]
    fn the_kernel_refuses_what_keylets_own_filter_leaves_out() {
        let (program, _) = program(false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = listener.local_addr().unwrap();
        let (state, connect, listen, exec) = std::thread::spawn(move || {
            seccompiler::apply_filter(&program).unwrap();
            let state = std::fs::write(&file, b"quote")
                .and_then(|()| std::fs::rename(&file, file.with_extension("new")))
                .and_then(|()| std::fs::read(file.with_extension("new")));
            let connect = std::net::TcpStream::connect(peer).map(drop);
            let listen = std::net::TcpListener::bind("127.0.0.1:0").map(drop);
            let exec = Command::new("/bin/sh").args(["-c", "true"]).status();
            (state, connect, listen, exec)
        })
        .join()
        .unwrap();
        assert_eq!(state.unwrap(), b"quote");
        connect.unwrap();
        assert_eq!(listen.unwrap_err().raw_os_error(), Some(nix::libc::EPERM));
        assert_eq!(exec.unwrap_err().raw_os_error(), Some(nix::libc::EPERM));
    }

    /// With operator scripts confined too, scripts run, and the kernel refuses
    /// the calls that change the system under them (here unshare(2), which any
    /// user may call otherwise).
    #[test]
    fn the_scripts_filter_runs_scripts_and_refuses_what_changes_the_system() {
        let (program, _) = program(true).unwrap();
        let (script, unshare) = std::thread::spawn(move || {
            seccompiler::apply_filter(&program).unwrap();
            let script = Command::new("/bin/sh").args(["-c", "exit 3"]).status();
            let unshare = nix::sched::unshare(nix::sched::CloneFlags::empty());
            (script, unshare)
        })
        .join()
        .unwrap();
        assert_eq!(script.unwrap().code(), Some(3));
        assert_eq!(unshare, Err(nix::errno::Errno::EPERM));
        // unfiltered, the same call succeeds
        nix::sched::unshare(nix::sched::CloneFlags::empty()).unwrap();
    }

    /// `keylet doctor`'s probe learns that the kernel takes the filter without
    /// filtering its caller.
    #[test]
    fn the_probe_leaves_its_caller_unfiltered() {
        assert_eq!(install(false, true), Ok(program(false).unwrap().1));
        assert!(
            Command::new("/bin/sh")
                .args(["-c", "true"])
                .status()
                .unwrap()
                .success()
        );
    }
}
