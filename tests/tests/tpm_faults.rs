//! keylet against a faulty TPM: a fault-injecting proxy between keylet's
//! `tcp://` transport and swtpm answers quotes with RETRY/YIELDED/TESTING
//! bursts, slow answers, a connection dropped mid-frame and garbage frames.
//! keylet must answer clean 500s (or 200 after a retry or reconnect within
//! its bounds), recover, leak no transient object, never panic, and count
//! the errors in its metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keylet_tests::agent::{Agent, counter, get};
use keylet_tests::fault_proxy::{CC_QUOTE, Fault, FaultProxy};
use keylet_tests::swtpm::SwtpmTcp;

const DEADLINE: Duration = Duration::from_secs(3);
const QUOTE: &str = "/v2.2/quotes/integrity?nonce=abcdefghij0123456789&mask=0x1&partial=1";
const RETRY: u32 = 0x922;
const YIELDED: u32 = 0x908;
const TESTING: u32 = 0x90A;

fn quote(agent: &Agent) -> (u16, Duration) {
    let (status, body, took) = get(agent.api, QUOTE);
    assert!(
        status == 200 || (status == 500 && body.contains("Unable to retrieve quote")),
        "not a clean answer: {status} {body}"
    );
    (status, took)
}

fn ak_handle(agent: &Agent) -> u32 {
    let (status, body, _) = get(agent.api, "/v2.2/agent/info");
    assert_eq!(status, 200, "{body}");
    let digits = body.split("\"ak_handle\":").nth(1).unwrap();
    digits
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn errors(agent: &Agent, kind: &str) -> f64 {
    let (_, text, _) = get(agent.metrics, "/metrics");
    counter(
        &text,
        &format!("keylet_tpm_errors_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or_else(|| panic!("no {kind} series\n{text}"))
}

#[test]
fn faults_give_clean_answers_recovery_and_no_leaks() {
    let panics = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&panics);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let swtpm = SwtpmTcp::start().unwrap();
    let proxy = FaultProxy::start(swtpm.port).unwrap();
    let mut agent = Agent::start(&format!("tcp://127.0.0.1:{}", proxy.port), DEADLINE).unwrap();
    assert_eq!(quote(&agent).0, 200, "a quote through the proxy");

    // Bursts within keylet's retry bound (8 resends) are absorbed.
    proxy.inject(CC_QUOTE, [Fault::Rc(RETRY); 3]);
    assert_eq!(quote(&agent).0, 200, "3 x TPM_RC_RETRY");
    proxy.inject(CC_QUOTE, [Fault::Rc(TESTING); 2]);
    assert_eq!(quote(&agent).0, 200, "2 x TPM_RC_TESTING");
    // Beyond it: a clean 500, soon; then quotes work again.
    proxy.inject(CC_QUOTE, [Fault::Rc(YIELDED); 9]);
    let (status, took) = quote(&agent);
    assert_eq!(status, 500, "9 x TPM_RC_YIELDED");
    assert!(took < DEADLINE, "the retries took {took:?}");
    assert_eq!(proxy.pending(), 0);
    assert_eq!(quote(&agent).0, 200, "after the YIELDED burst");
    assert!(errors(&agent, "retry") >= 14.0);

    // A slow answer within the deadline is waited for; a slower one is
    // answered 500 at the deadline and the TPM work finishes by itself.
    proxy.inject(CC_QUOTE, [Fault::Slow(Duration::from_secs(1))]);
    let (status, took) = quote(&agent);
    assert_eq!(status, 200, "a quote answered in 1 s");
    assert!(took >= Duration::from_secs(1));
    proxy.inject(CC_QUOTE, [Fault::Slow(Duration::from_secs(5))]);
    let (status, took) = quote(&agent);
    assert_eq!(status, 500, "a quote answered in 5 s");
    assert!(
        took < DEADLINE + Duration::from_secs(1),
        "answered after {took:?}"
    );
    assert_eq!(quote(&agent).0, 200, "after the slow answer");
    assert!(errors(&agent, "deadline") >= 1.0);

    // A connection dropped mid-frame and a frame of impossible size: keylet
    // reconnects, reloads the AK and quotes again.
    for (fault, kind) in [
        (Fault::DropMidFrame, "connection"),
        (Fault::BadSize, "malformed"),
    ] {
        let connections = proxy.connections();
        proxy.inject(CC_QUOTE, [fault]);
        assert_eq!(
            quote(&agent).0,
            200,
            "{fault:?}: recovered in the same request"
        );
        assert_eq!(
            proxy.connections(),
            connections + 1,
            "{fault:?}: one reconnect"
        );
        assert!(errors(&agent, kind) >= 1.0, "{fault:?} counted as {kind}");
    }
    // Noise in a well-framed answer: a clean 500, the connection is kept.
    let connections = proxy.connections();
    proxy.inject(CC_QUOTE, [Fault::Noise]);
    assert_eq!(quote(&agent).0, 500, "a garbage quote");
    assert_eq!(quote(&agent).0, 200, "after the garbage quote");
    assert_eq!(proxy.connections(), connections);

    // No leaks: the TPM holds exactly the AK keylet reports.
    assert_eq!(proxy.transient_handles().unwrap(), [ak_handle(&agent)]);
    let took = agent.stop().expect("the agent stopped");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    assert_eq!(
        proxy.transient_handles().unwrap(),
        Vec::<u32>::new(),
        "the AK is flushed at the stop"
    );
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a thread panicked");
}
