//! Where keylet's blocking work runs, so that nothing waits behind work of
//! another kind: TPM jobs on the [`tpm`] worker (tasks taking turns while the
//! TPM's commands wait on the runtime), the operator's scripts (payload
//! delivery, revocation actions) on the [`operator`] thread. The async thread
//! moves bytes and blocks on nothing; tokio's one blocking thread reads logs.

pub mod operator;
pub mod tpm;

use std::sync::mpsc::Receiver;

pub use tpm::{TpmJobError, TpmWorker};

/// A job for one of the executors' threads.
type Job = Box<dyn FnOnce() + Send>;

/// Starts the thread `name` that runs the jobs from `jobs`, one at a time, in
/// order, until every sender is gone. A panic ends its job (the requester
/// sees the job gone), not the thread. `false` (logged as the thread of
/// `what`) if the thread cannot start.
fn spawn(name: &str, what: &str, jobs: Receiver<Job>) -> bool {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            for job in jobs {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        })
        .inspect_err(|e| log::error!("cannot start the thread that runs {what}: {e}"))
        .is_ok()
}
