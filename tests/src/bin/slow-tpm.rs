//! `slow-tpm`: a TCP proxy in front of swtpm that answers like a real TPM
//! chip (see `keylet_tests::latency`): each command is held until the
//! profile's answer time has passed, some are first answered with a burst of
//! TPM_RC_RETRY/YIELDED/TESTING, and one can stall. The e2e suites start it
//! and point keylet's `tpm_device` at it (`tests/e2e/slow-tpm.sh`).
//!
//! Usage: slow-tpm LISTEN_PORT SWTPM_PORT PROFILE(discrete|firmware)
//!        [--busy-every N] [--busy-burst K] [--stall-at N] [--stall-ms MS] [--max-secs S]
//! Prints `listening on 127.0.0.1:PORT` once it accepts connections, and a
//! line per busy burst and stall. Exits by itself after `--max-secs` (900).

use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keylet_tests::fault_proxy::{exchange, rc_frame, read_frame};
use keylet_tests::latency::{BUSY, Hiccups, Profile};

fn serve(
    mut down: TcpStream,
    swtpm_port: u16,
    profile: Profile,
    hiccups: Hiccups,
    count: &AtomicU64,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let up = TcpStream::connect(("127.0.0.1", swtpm_port))?;
    up.set_read_timeout(Some(Duration::from_secs(120)))?;
    let upstream = Mutex::new(up);
    let mut burst: u32 = 0;
    while let Some(cmd) = read_frame(&mut down)? {
        let n = count.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        let cc = cmd
            .get(6..10)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        if burst == 0 {
            burst = hiccups.busy_for(n);
            if burst > 0 {
                println!("command {n} ({cc:#x}): {burst} busy answers");
            }
        }
        if burst > 0 {
            burst -= 1;
            let rc = BUSY
                .get(burst as usize % BUSY.len())
                .copied()
                .unwrap_or(0x922);
            down.write_all(&rc_frame(rc))?;
            continue;
        }
        let t0 = Instant::now();
        let rsp = exchange(&upstream, &cmd)?;
        let stall = hiccups.stall_for(n);
        if !stall.is_zero() {
            println!("command {n} ({cc:#x}): stalled {} ms", stall.as_millis());
        }
        let hold = profile.answer_time(cc).saturating_add(stall);
        std::thread::sleep(hold.saturating_sub(t0.elapsed()));
        down.write_all(&rsp)?;
    }
    Ok(())
}

struct Args {
    listen: u16,
    swtpm: u16,
    profile: Profile,
    hiccups: Hiccups,
    max_secs: u64,
}

fn parse() -> Result<Args, String> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let [listen, swtpm, profile, rest @ ..] = argv.as_slice() else {
        return Err(
            "usage: slow-tpm LISTEN_PORT SWTPM_PORT PROFILE [--busy-every N] \
                    [--busy-burst K] [--stall-at N] [--stall-ms MS] [--max-secs S]"
                .into(),
        );
    };
    let port = |s: &str| s.parse::<u16>().map_err(|e| format!("port {s}: {e}"));
    let mut a = Args {
        listen: port(listen)?,
        swtpm: port(swtpm)?,
        profile: Profile::from_name(profile)
            .ok_or_else(|| format!("profile {profile}: discrete or firmware"))?,
        hiccups: Hiccups::default(),
        max_secs: 900,
    };
    for pair in rest.chunks(2) {
        let [flag, value] = pair else {
            return Err(format!("{pair:?}: a flag without its value"));
        };
        let v: u64 = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--busy-every" => a.hiccups.busy_every = v,
            "--busy-burst" => a.hiccups.busy_burst = u32::try_from(v).map_err(|e| e.to_string())?,
            "--stall-at" => a.hiccups.stall_at = v,
            "--stall-ms" => a.hiccups.stall = Duration::from_millis(v),
            "--max-secs" => a.max_secs = v,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("slow-tpm: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("127.0.0.1", a.listen)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("slow-tpm: listen on 127.0.0.1:{}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    let max = Duration::from_secs(a.max_secs);
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("slow-tpm: --max-secs reached, exiting");
        std::process::exit(0);
    });
    println!("listening on 127.0.0.1:{}", a.listen);
    let count = Arc::new(AtomicU64::new(0));
    for down in listener.incoming() {
        let Ok(down) = down else { continue };
        let count = Arc::clone(&count);
        let (swtpm, profile, hiccups) = (a.swtpm, a.profile, a.hiccups);
        std::thread::spawn(move || {
            if let Err(e) = serve(down, swtpm, profile, hiccups, &count) {
                eprintln!("slow-tpm: connection ended: {e}");
            }
        });
    }
    ExitCode::SUCCESS
}
