//! Push mode's TPM side against the fake TPM of `server_support`: push mode
//! reaches the TPM through the same `Attestation` trait as the pull server,
//! so its evidence and its runs on the TPM worker are tested without a TPM.
//! (The real TPM: tests/tests/push_loop_swtpm.rs; the real verifier:
//! tests/e2e/push.sh.)
#![cfg(feature = "push")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet::executor::{TpmJobError, TpmWorker};
use keylet::logs::ImaLog;
use keylet::push::PushError;
use keylet::push::evidence::{self, Sources};
use keylet::push::messages::{self, Collected, Requested};
use keylet::server::Attestation;
use keylet_core::pcr::PcrMask;
use keylet_core::tpm::transport::BlockOn as _;
use server_support::{FAKE_AK_PUBLIC, FakeTpm, temp_dir};

fn sources(ima: Option<Arc<ImaLog>>) -> Sources {
    Sources {
        ima,
        uefi: None,
        boot_time: "2026-01-01T00:00:00+00:00".into(),
        uefi_version: "2.1".into(),
        server_identifier: "ak".into(),
    }
}

fn quote_of(challenge: &[u8], pcrs: &[u8]) -> Requested {
    let mask = pcrs
        .iter()
        .fold(PcrMask::EMPTY, |mask, &pcr| mask.with(pcr));
    Requested::Quote {
        challenge: challenge.to_vec(),
        pcrs: mask,
    }
}

#[test]
fn capabilities_offer_the_ak_and_the_bank_of_the_tpm_behind_the_trait() {
    let tpm = FakeTpm::default();
    let body = evidence::capabilities(&tpm, &sources(None)).unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(&STANDARD.encode(FAKE_AK_PUBLIC)),
        "the AK public is not offered: {text}"
    );
    assert!(text.contains("sha256"), "the bank is not offered: {text}");
    assert!(
        tpm.calls.lock().unwrap().is_empty() && tpm.certified.lock().unwrap().is_empty(),
        "the capabilities ran a TPM command"
    );
}

#[test]
fn the_quote_asked_for_is_made_with_the_challenge_and_pcrs_and_split_for_the_evidence() {
    let tpm = FakeTpm::default();
    let requested = [quote_of(b"challenge", &[0, 10])];
    let quote = evidence::quote(&tpm, &requested).block_on().unwrap();
    let mask = PcrMask::EMPTY.with(0).with(10).bits();
    assert_eq!(
        *tpm.calls.lock().unwrap(),
        vec![(STANDARD.encode(b"challenge"), mask)]
    );
    let Some(Collected::Quote {
        message,
        signature,
        subject_data,
    }) = quote
    else {
        panic!("no quote collected: {quote:?}");
    };
    assert_eq!(message, STANDARD.encode(b"challenge"));
    assert_eq!(signature, format!("{mask:x}"));
    assert_eq!(subject_data, "blob");
}

#[test]
fn no_quote_asked_for_runs_no_tpm_command() {
    let tpm = FakeTpm::default();
    let requested = [Requested::Uefi];
    assert!(
        evidence::quote(&tpm, &requested)
            .block_on()
            .unwrap()
            .is_none()
    );
    assert!(tpm.calls.lock().unwrap().is_empty());
}

#[test]
fn a_failing_tpm_is_a_tpm_error_naming_the_failure() {
    let tpm = FakeTpm::default();
    tpm.fail.store(true, Ordering::SeqCst);
    let err = evidence::quote(&tpm, &[quote_of(b"c", &[10])])
        .block_on()
        .unwrap_err();
    assert!(
        matches!(&err, PushError::Tpm(d) if d.contains("simulated TPM failure")),
        "{err:?}"
    );
}

#[test]
fn the_evidence_holds_the_quote_then_the_ima_lines_from_the_offset() {
    let dir = temp_dir("push-tpm");
    let path = dir.join("ima");
    std::fs::write(&path, "l0\nl1\nl2\n").unwrap();
    let ima = Arc::new(ImaLog::open(&path).unwrap());
    let tpm = FakeTpm::default();
    let requested = [
        quote_of(b"n", &[10]),
        Requested::Ima {
            starting_offset: 1,
            entry_count: None,
        },
    ];
    let quote = evidence::quote(&tpm, &requested).block_on().unwrap();
    let (collected, sent) = evidence::collect(quote, &sources(Some(ima)), &requested).unwrap();
    assert!(matches!(collected.first(), Some(Collected::Quote { .. })));
    assert!(
        matches!(collected.get(1), Some(Collected::Ima { entries, entry_count: 2 }) if entries == "l1\nl2\n"),
        "{collected:?}"
    );
    assert_eq!(sent, Some(1..3));
    let text = String::from_utf8(messages::evidence(&collected)).unwrap();
    assert!(
        text.contains("tpm_quote") && text.contains("ima_log"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_ima_request_without_an_ima_log_is_a_log_error() {
    let tpm = FakeTpm::default();
    let requested = [
        quote_of(b"n", &[10]),
        Requested::Ima {
            starting_offset: 0,
            entry_count: None,
        },
    ];
    let quote = evidence::quote(&tpm, &requested).block_on().unwrap();
    let err = evidence::collect(quote, &sources(None), &requested).unwrap_err();
    assert!(matches!(err, PushError::Log(_)), "{err:?}");
}

/// The proof of possession and the push quote run on the TPM worker, where
/// a quote of the pull server waits behind them, never beside them.
#[tokio::test]
async fn push_tpm_work_queues_on_the_tpm_worker_with_the_quotes() {
    let tpm: Arc<dyn Attestation> = Arc::new(FakeTpm::default());
    let worker = TpmWorker::default();
    let certifying = Arc::clone(&tpm);
    let (attest, signature) = worker
        .run(Duration::from_secs(5), async move {
            certifying.certify_ak(b"challenge").await
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attest, b"attest:challenge");
    assert_eq!(signature, b"signature");

    // A slow push quote holds the worker: a job with a shorter deadline
    // queued behind it gets its deadline, and is dropped unrun.
    let slow = Arc::new(FakeTpm::default());
    slow.delay_ms.store(300, Ordering::SeqCst);
    let (quoting, behind) = (Arc::clone(&slow), Arc::clone(&slow));
    let first = worker.run(Duration::from_secs(5), async move {
        quoting
            .quote_unbound(b"first", PcrMask::EMPTY.with(10))
            .await
    });
    let second = worker.run(Duration::from_millis(50), async move {
        behind
            .quote_unbound(b"second", PcrMask::EMPTY.with(10))
            .await
    });
    let (first, second) = tokio::join!(first, second);
    assert!(first.unwrap().is_ok());
    assert_eq!(
        second.unwrap_err(),
        TpmJobError::Deadline(Duration::from_millis(50))
    );
    // Once the worker has moved on, the dropped job never reached the TPM.
    worker.run(Duration::from_secs(5), async {}).await.unwrap();
    let calls = slow.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the job past its deadline ran: {calls:?}");
}
