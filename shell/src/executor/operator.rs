//! The operator's work (payload delivery with its script, revocation
//! actions) runs here: one thread for the whole process, one job at a time,
//! at most [`QUEUE`] jobs waiting. Never on the TPM worker nor on the async
//! thread, so a slow script delays only the scripts after it; each script
//! keeps its own bound (`script::SCRIPT_TIMEOUT`, 60 s).

use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use super::Job;

/// How many jobs may wait behind the running one; more are refused.
pub(crate) const QUEUE: usize = 8;

/// The queue of a thread running jobs one at a time, at most [`QUEUE`]
/// waiting, started with its first job (`None` if it could not start).
type Executor = OnceLock<Option<SyncSender<Job>>>;

static EXECUTOR: Executor = OnceLock::new();

/// Queues `job` behind the operator jobs already queued; its result comes on
/// the returned receiver (which reports a disconnect if the job panicked).
///
/// Errors: Why not, if the queue is full or the executor cannot start.
pub(crate) fn submit<R: Send + 'static>(
    job: impl FnOnce() -> R + Send + 'static,
) -> Result<Receiver<R>, String> {
    submit_to(&EXECUTOR, job)
}

fn submit_to<R: Send + 'static>(
    executor: &Executor,
    job: impl FnOnce() -> R + Send + 'static,
) -> Result<Receiver<R>, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(job());
    });
    let queue = executor.get_or_init(|| {
        let (tx, jobs) = mpsc::sync_channel::<Job>(QUEUE);
        super::spawn("keylet-operator", "operator scripts", jobs).then_some(tx)
    });
    match queue.as_ref().map(|queue| queue.try_send(job)) {
        Some(Ok(())) => Ok(rx),
        Some(Err(TrySendError::Full(_))) => Err(format!(
            "{QUEUE} operator jobs (payload deliveries, revocation actions) are already \
             waiting for the running one; this one is not run"
        )),
        _ => Err("the thread that runs operator scripts cannot start".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn jobs_run_one_at_a_time_in_order_and_a_panic_ends_only_its_job() {
        let running = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let receivers: Vec<_> = (0..4)
            .map(|i| {
                let (running, order) = (Arc::clone(&running), Arc::clone(&order));
                submit(move || {
                    let overlap = running.fetch_add(1, Ordering::SeqCst);
                    order.lock().unwrap().push(i);
                    std::thread::yield_now();
                    running.fetch_sub(1, Ordering::SeqCst);
                    overlap
                })
                .unwrap()
            })
            .collect();
        for rx in receivers {
            assert_eq!(rx.recv().unwrap(), 0, "two operator jobs overlapped");
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        let gone = submit(|| -> u8 { panic!("job panics") }).unwrap();
        assert!(gone.recv().is_err());
        assert_eq!(submit(|| 5).unwrap().recv().unwrap(), 5);
    }

    #[test]
    fn jobs_beyond_the_queue_are_refused_until_it_drains() {
        let executor = Executor::new();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let running = submit_to(&executor, move || {
            let _ = started_tx.send(());
            release_rx.recv().is_ok()
        })
        .unwrap();
        started_rx.recv().unwrap();
        let waiting: Vec<_> = (0..QUEUE)
            .map(|i| submit_to(&executor, move || i).unwrap())
            .collect();
        let busy = submit_to(&executor, || 0).unwrap_err();
        assert!(busy.contains("already waiting"), "{busy}");
        release_tx.send(()).unwrap();
        assert!(running.recv().unwrap());
        for (i, rx) in waiting.into_iter().enumerate() {
            assert_eq!(rx.recv().unwrap(), i);
        }
        assert_eq!(submit_to(&executor, || 7).unwrap().recv().unwrap(), 7);
    }
}
