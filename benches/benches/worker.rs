//! The TPM worker's handoff: an empty job sent from a current-thread tokio
//! runtime (as `keylet run` has) to the worker thread and its result back, the
//! cost every quote pays on top of its TPM commands when the TPM's link cannot
//! be watched; and the same job as a task taking its turn on the runtime, as
//! it runs when the TPM's commands wait on the runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keylet::executor::TpmWorker;

fn handoff(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let worker = TpmWorker::default();
    c.bench_function("tpm_worker_round_trip", |b| {
        b.iter(|| {
            runtime
                .block_on(worker.run(Duration::from_secs(10), async { 1u32 }))
                .unwrap()
        });
    });
    let tasks = TpmWorker::default();
    tasks.as_tasks();
    c.bench_function("tpm_worker_task_round_trip", |b| {
        b.iter(|| {
            runtime
                .block_on(tasks.run(Duration::from_secs(10), async { 1u32 }))
                .unwrap()
        });
    });
}

criterion_group!(benches, handoff);
criterion_main!(benches);
