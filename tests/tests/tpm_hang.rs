//! A hung TPM (swtpm frozen with SIGSTOP mid-quote) must not stall what does
//! not need it: keylet's own server, start-up steps and stop path, in-process
//! on keylet's runtime (one async thread, one blocking thread).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keylet_core::tpm::transport::BlockOn as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use keylet_tests::agent::{Agent, counter, get};
use keylet_tests::swtpm::SwtpmTcp;

/// What the issue promises for everything that does not need the TPM.
const FAST: Duration = Duration::from_millis(100);
/// The quote deadline the test runs with (keylet's default is 10 s).
const DEADLINE: Duration = Duration::from_secs(3);
/// The promised stop bound.
const STOP_BOUND: Duration = Duration::from_secs(2);

const QUOTE: &str = "/v2.2/quotes/integrity?nonce=abcdefghij0123456789&mask=0x1&partial=1";

/// The fastest of three GETs (the machine may be busy; a stall is seconds).
fn fast_get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let mut best = (0, Duration::MAX);
    for _ in 0..3 {
        let (status, body, took) = get(addr, path);
        assert_eq!(status, 200, "{path}: {body}");
        if took < best.1 {
            best = (status, took);
        }
    }
    best
}

/// Starts a quote on its own thread (it answers (status, time)) and waits
/// until its first command sits unread at the frozen swtpm.
fn quote_in_flight(swtpm: &SwtpmTcp, addr: SocketAddr) -> std::thread::JoinHandle<(u16, Duration)> {
    let t = std::thread::spawn(move || {
        let (status, _, took) = get(addr, QUOTE);
        (status, took)
    });
    let t0 = Instant::now();
    while swtpm.unread_bytes().unwrap() == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no command of the quote reached the frozen swtpm within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    t
}

#[test]
fn a_hung_tpm_stalls_nothing_but_quotes() {
    let swtpm = SwtpmTcp::start().unwrap();
    let device = format!("tcp://127.0.0.1:{}", swtpm.port);
    let mut agent = Agent::start(&device, DEADLINE).unwrap();
    assert_eq!(get(agent.api, QUOTE).0, 200, "a quote before the hang");

    swtpm.pause().unwrap();
    let stuck = quote_in_flight(&swtpm, agent.api);
    let checks = [
        (agent.api, "/version"),
        (agent.api, "/v2.2/agent/info"),
        (agent.api, "/v2.2/keys/pubkey"),
        (agent.metrics, "/metrics"),
        (agent.identity, "/version"),
        (agent.identity, "/v2.2/agent/info"),
    ];
    for (addr, path) in checks {
        let (_, took) = fast_get(addr, path);
        assert!(
            took < FAST,
            "{path} on {addr} took {took:?} while the TPM hangs"
        );
    }
    // An identity quote queues behind the stuck one: 500 within the deadline.
    let (status, _, took) = get(
        agent.identity,
        "/v2.2/quotes/identity?nonce=abcdefghij0123456789",
    );
    assert_eq!(status, 500, "identity quote while the TPM hangs");
    assert!(
        took < DEADLINE + Duration::from_secs(1),
        "identity quote took {took:?}"
    );
    let (status, took) = stuck.join().unwrap();
    assert_eq!(status, 500, "the quote stuck in the TPM");
    assert!(
        took < DEADLINE + Duration::from_secs(1),
        "stuck quote took {took:?}"
    );
    let (_, text, _) = get(agent.metrics, "/metrics");
    let deadlines = counter(&text, "keylet_tpm_errors_total{kind=\"deadline\"}").unwrap();
    assert!(
        deadlines >= 2.0,
        "deadline errors counted: {deadlines}\n{text}"
    );

    // The TPM comes back: keylet recovers by itself.
    swtpm.resume().unwrap();
    let mut recovered = false;
    for _ in 0..20 {
        if get(agent.api, QUOTE).0 == 200 {
            recovered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(recovered, "no quote answered 200 after the TPM came back");

    // Hung again, a quote in flight: the stop is bounded.
    swtpm.pause().unwrap();
    let stuck = quote_in_flight(&swtpm, agent.api);
    let took = agent.stop().expect("the agent stopped");
    assert!(
        took < STOP_BOUND,
        "stopping took {took:?} while the TPM hangs"
    );
    swtpm.resume().unwrap();
    let _ = stuck.join();

    // keylet is gone; the AK the hung TPM could not flush is still there
    // (swtpm over TCP has no resource manager), and the next start's flush
    // of leftovers takes it. (swtpm serves one connection at a time: this
    // one gets through once keylet's connection is closed.)
    drop(agent);
    let mut tpm = keylet::agent::TpmBox::open(device.parse().unwrap()).unwrap();
    let left = tpm.tpm().flush_leftovers().block_on().unwrap();
    assert!(left >= 1, "no AK left to flush: {left} objects");
    assert_eq!(tpm.tpm().flush_leftovers().block_on().unwrap(), 0);
}
