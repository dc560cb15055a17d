//! keylet-core's whole quote path — command building, response parsing, PCR
//! read loop, self-check and quote-string encoding — makes zero heap
//! allocations. (The shell's HTTP and TLS layers around it are not covered:
//! they allocate.)
//! A replay transport feeds it the responses swtpm gave (including the
//! first quote's TPM_RC_RETRY) and checks that keylet sends exactly the
//! commands it sent then.
//!
//! The allocation counter is process-wide, so this file runs without the
//! libtest harness (`harness = false` in Cargo.toml): under the harness the
//! main thread's own bookkeeping after spawning the test thread could land
//! inside the measured region (seen under qemu-user on a loaded machine:
//! "round 0: 4 allocations, 496 bytes" that were not the quote path's).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "data/frames/frames.rs"]
mod frames;

use keylet_core::tpm::transport::BlockOn as _;
use std::alloc::System;
use std::fmt;

use keylet_core::agent::{BUFFER_SIZE, QuoteRequest, Tpm};
use keylet_core::pcr::{HashAlg, PcrMask, extended_once};
use keylet_core::tpm::transport::Transport;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Debug, Clone, Copy)]
struct Exhausted;

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("replay has no more frames")
    }
}

/// Answers each command with the next recorded response and counts
/// commands that differ from the recorded ones.
/// Answers each command with the first unused recorded frame that has the
/// same command bytes (a command with none is an error), and records the
/// order of the command codes. With `unbind`, PCR_Read answers show PCR 16
/// as zero (the state after a reboot) instead of the recorded binding.
/// Allocates nothing itself.
struct Replay<'a> {
    frames: &'a [frames::Frame],
    used: u64,
    sent: [u32; 16],
    count: usize,
    backoffs: u32,
    unbind: Option<[u8; 32]>,
}

impl<'a> Replay<'a> {
    fn new(frames: &'a [frames::Frame], unbind: Option<[u8; 32]>) -> Self {
        Self {
            frames,
            used: 0,
            sent: [0; 16],
            count: 0,
            backoffs: 0,
            unbind,
        }
    }

    fn sent(&self) -> &[u32] {
        &self.sent[..self.count]
    }

    fn all_used(&self) -> bool {
        self.used.count_ones() as usize == self.frames.len()
    }
}

impl Transport for Replay<'_> {
    type Error = Exhausted;

    async fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Exhausted> {
        let (i, f) = self
            .frames
            .iter()
            .enumerate()
            .find(|(i, f)| self.used & (1 << i) == 0 && f.command == command)
            .ok_or(Exhausted)?;
        self.used |= 1 << i;
        self.sent[self.count] = f.cc;
        self.count += 1;
        let r = &mut response[..f.response.len()];
        r.copy_from_slice(&f.response);
        if let (0x17E, Some(bound)) = (f.cc, self.unbind) {
            let at = r
                .windows(32)
                .position(|w| w == bound)
                .expect("PCR 16 in the PCR_Read");
            r[at..at + 32].fill(0);
        }
        Ok(f.response.len())
    }

    async fn backoff(&mut self, _attempt: u32) {
        self.backoffs += 1;
    }
}

fn main() {
    // The only thread in this process: nothing else can allocate meanwhile.
    quote_path_makes_no_heap_allocation();
    println!("test quote_path_makes_no_heap_allocation ... ok");
}

fn quote_path_makes_no_heap_allocation() {
    let capture = frames::load("quote_path.txt");
    let nonce = frames::unhex(capture.header("nonce"));
    let digest = frames::unhex(capture.header("data_digest"));
    let mask = u32::from_str_radix(capture.header("mask").trim_start_matches("0x"), 16).unwrap();
    let ak = u32::from_str_radix(capture.header("ak").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(capture.header("bank"), "sha256");
    let expected = capture.header("quote_string").to_owned();
    let req = QuoteRequest {
        ak,
        nonce: &nonce,
        bank: HashAlg::Sha256,
        mask: PcrMask::new(mask).unwrap(),
        data_digest: &digest,
    };
    let mut cmd = vec![0u8; BUFFER_SIZE];
    let mut rsp = vec![0u8; BUFFER_SIZE];
    let mut out = vec![0u8; 8192];

    // PCR 16 as recorded (bound) and as after a reboot (zero).
    let bound: [u8; 32] = extended_once(HashAlg::Sha256, &digest)
        .as_bytes()
        .try_into()
        .unwrap();
    const READ: u32 = 0x17E;
    const QUOTE: u32 = 0x158;
    for (round, unbind) in [(0, None), (1, Some(bound)), (2, None)] {
        let region = Region::new(GLOBAL);
        let (n, replay) = {
            let mut tpm = Tpm::new(Replay::new(&capture.frames, unbind), &mut cmd, &mut rsp);
            let n = tpm.quote(&req, &mut out).block_on().unwrap();
            (n, tpm.into_transport())
        };
        let stats = region.change();
        assert_eq!(stats.allocations, 0, "round {round}: {stats:?}");
        assert_eq!(stats.reallocations, 0, "round {round}: {stats:?}");
        if unbind.is_some() {
            // Reset and extend, and the values sent are the TPM's after them.
            assert_eq!(
                replay.sent(),
                [READ, 0x13D, 0x182, QUOTE, QUOTE],
                "round {round}"
            );
            assert!(replay.all_used(), "every recorded frame replayed");
        } else {
            // PCR 16 already holds the binding: PCR_Read and Quote only.
            assert_eq!(replay.sent(), [READ, QUOTE, QUOTE], "round {round}");
        }
        assert_eq!(
            replay.backoffs, 1,
            "the recorded TPM_RC_RETRY was retried once"
        );
        assert_eq!(std::str::from_utf8(&out[..n]).unwrap(), expected);
    }
}
