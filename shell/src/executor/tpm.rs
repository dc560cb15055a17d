//! [`TpmWorker`]: where TPM jobs run after start-up, one at a time. Every
//! TPM job (a quote for the verifier or SPIRE, a push-mode proof or quote)
//! waits in one queue with its deadline; no other kind of work runs there,
//! so a quote waits at most for the TPM jobs ahead of it. A job whose
//! deadline passed while it waited, or whose requester has gone, is dropped
//! without touching the TPM; a job that has started finishes by itself.
//! While the TPM's commands wait on the runtime (a watched link), jobs are
//! runtime tasks taking turns; else they run on the worker's own thread.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use keylet_core::tpm::transport::BlockOn as _;

use super::Job;

/// Why a TPM job gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TpmJobError {
    /// Not finished within its deadline (queued behind other TPM work, or
    /// the TPM hangs); if it started, it finishes by itself.
    #[error(
        "no TPM answer within the deadline of {} s (is the TPM hung?)",
        .0.as_secs_f32()
    )]
    Deadline(Duration),
    /// Dropped unfinished: it panicked, keylet is stopping, or the worker
    /// thread could not start.
    #[error("the TPM job stopped before finishing")]
    Stopped,
}

/// A handle on the TPM worker; clones share the one thread. The thread is
/// started with the first job and ends when the last handle is dropped
/// (after the job it runs, if any).
#[derive(Clone, Default, Debug)]
pub struct TpmWorker {
    queue: Arc<OnceLock<Option<Sender<Job>>>>,
    /// Set by [`TpmWorker::stop`]: no job starts any more.
    stopping: Arc<AtomicBool>,
    /// Set by [`TpmWorker::as_tasks`]: the turn each job task waits for.
    tasks: Arc<OnceLock<Arc<tokio::sync::Mutex<()>>>>,
}

impl TpmWorker {
    /// Stops taking TPM work, at keylet's stop: the jobs still queued are
    /// dropped unrun (their requesters see [`TpmJobError::Stopped`]) and new
    /// ones are refused, so the flush of the AK that follows waits only for
    /// the job that runs now, not for a queue of quotes on a slow TPM.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Runs every job from now on as a runtime task, in turn (the TPM's
    /// commands wait on the runtime), instead of on the worker's thread.
    pub fn as_tasks(&self) {
        let _ = self.tasks.set(Arc::default());
    }

    /// Runs `work` (TPM commands) as a TPM job and waits for its result at
    /// most `deadline`, the wait in the queue included.
    ///
    /// # Errors
    ///
    /// [`TpmJobError`] if no result came within `deadline` or the job stopped.
    pub async fn run<R: Send + 'static>(
        &self,
        deadline: Duration,
        work: impl Future<Output = R> + Send + 'static,
    ) -> Result<R, TpmJobError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(TpmJobError::Stopped);
        }
        self.submit(deadline, work, Some(Arc::clone(&self.stopping)))
            .await
    }

    /// Runs `work` as the last TPM job, at keylet's stop: after the job that
    /// runs now, not after those still queued. Waits as [`TpmWorker::run`].
    pub(crate) async fn finish<R: Send + 'static>(
        &self,
        deadline: Duration,
        work: impl Future<Output = R> + Send + 'static,
    ) -> Result<R, TpmJobError> {
        self.submit(deadline, work, None).await
    }

    async fn submit<R: Send + 'static>(
        &self,
        deadline: Duration,
        work: impl Future<Output = R> + Send + 'static,
        stopping: Option<Arc<AtomicBool>>,
    ) -> Result<R, TpmJobError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let until = Instant::now() + deadline;
        // A job whose deadline passed in the queue is dropped (its requester
        // has already answered), and so is every job once keylet stops and
        // a job whose requester gave up while it waited.
        let job = async move {
            if stopping.is_some_and(|s| s.load(Ordering::SeqCst)) {
                log::debug!("dropped a TPM job: keylet is stopping");
            } else if Instant::now() >= until {
                log::debug!("dropped a TPM job whose deadline passed while it waited");
            } else if !tx.is_closed() {
                let _ = tx.send(work.await);
            }
        };
        if let Some(turn) = self.tasks.get().cloned() {
            tokio::spawn(async move {
                let _turn = turn.lock_owned().await;
                job.await;
            });
        } else {
            let queue = self.queue.get_or_init(|| {
                let (tx, jobs) = mpsc::channel::<Job>();
                super::spawn("keylet-tpm", "TPM jobs", jobs).then_some(tx)
            });
            let job: Job = Box::new(move || job.block_on());
            if queue.as_ref().is_none_or(|queue| queue.send(job).is_err()) {
                return Err(TpmJobError::Stopped);
            }
        }
        match tokio::time::timeout(deadline, rx).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(_)) => Err(TpmJobError::Stopped),
            Err(_) => Err(TpmJobError::Deadline(deadline)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long TPM job that holds `worker` (started when this returns) until
    /// the sender sends; the task answers whether it was released.
    async fn hold(
        worker: &TpmWorker,
    ) -> (
        tokio::task::JoinHandle<Result<bool, TpmJobError>>,
        mpsc::Sender<()>,
    ) {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let busy = worker.clone();
        let first = tokio::spawn(async move {
            busy.run(Duration::from_secs(30), async move {
                let _ = started_tx.send(());
                release_rx.recv().is_ok()
            })
            .await
        });
        started_rx.await.unwrap();
        (first, release_tx)
    }

    #[tokio::test]
    async fn runs_jobs_in_order_and_reports_a_panicking_one_as_stopped() {
        let worker = TpmWorker::default();
        let a = worker.run(Duration::from_secs(5), async { 1 }).await;
        let b = worker.run(Duration::from_secs(5), async { 2 }).await;
        assert_eq!((a, b), (Ok(1), Ok(2)));
        let r: Result<(), _> = worker
            .run(Duration::from_secs(5), async { panic!("job panics") })
            .await;
        assert_eq!(r, Err(TpmJobError::Stopped));
        assert_eq!(worker.run(Duration::from_secs(5), async { 4 }).await, Ok(4));
    }

    #[tokio::test]
    async fn a_job_past_its_deadline_in_the_queue_is_dropped_not_run() {
        let worker = TpmWorker::default();
        let (first, release_tx) = hold(&worker).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let late = worker
            .run(Duration::from_millis(50), async move {
                flag.store(true, Ordering::SeqCst);
            })
            .await;
        assert_eq!(late, Err(TpmJobError::Deadline(Duration::from_millis(50))));
        release_tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
        // The worker has moved past the dropped job: a new one runs.
        assert_eq!(worker.run(Duration::from_secs(5), async { 3 }).await, Ok(3));
        assert!(!ran.load(Ordering::SeqCst), "a job past its deadline ran");
    }

    #[tokio::test]
    async fn after_stop_queued_jobs_are_dropped_and_new_ones_refused() {
        let worker = TpmWorker::default();
        let (first, release_tx) = hold(&worker).await;
        // A quote queued behind the running job, its requester still waiting.
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let mut queued = Box::pin(worker.run(Duration::from_secs(30), async move {
            flag.store(true, Ordering::SeqCst);
        }));
        // Polled once (a zero timeout polls its future first), the job is in
        // the queue: run enqueues before it waits.
        let early = tokio::time::timeout(Duration::ZERO, &mut queued).await;
        assert!(
            early.is_err(),
            "the queued job answered before the stop: {early:?}"
        );
        worker.stop();
        release_tx.send(()).unwrap();
        // The running job finishes; the queued one is dropped unrun.
        assert_eq!(first.await.unwrap(), Ok(true));
        assert_eq!(queued.await, Err(TpmJobError::Stopped));
        assert!(
            !ran.load(Ordering::SeqCst),
            "a job queued before the stop ran"
        );
        assert_eq!(
            worker.run(Duration::from_secs(5), async { 5 }).await,
            Err(TpmJobError::Stopped)
        );
    }
}
