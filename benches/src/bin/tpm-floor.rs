//! The TPM floor of one integrity quote: the same commands keylet sends
//! (keylet-core's quote path: PCR_Read and TPM2_Quote once PCR 16 holds the
//! binding, PCR_Reset and PCR_Extend of PCR 16 too when it does not),
//! straight to swtpm over one open TCP connection, with no HTTP, TLS or
//! JSON. `scripts/bench-agent.sh` compares keylet's answer time with it.
//!
//! Usage: tpm-floor HOST PORT ALG(rsa|ecc) MASK(hex) COUNT
//! Prints one line of JSON: {"alg","mask","count","median_ms","p95_ms","min_ms"}.
//! Uses the EK persisted at its TCG handle (or creates a transient one) and
//! a transient AK, and flushes what it created before it exits.

use keylet_core::tpm::transport::BlockOn as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use keylet::tpm::TpmTransport;
use keylet_core::agent::{QuoteRequest, Tpm};
use keylet_core::pcr::{HashAlg, PcrMask};
use keylet_core::tpm::template::KeyAlg;

fn main() -> ExitCode {
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tpm-floor: {e}");
            ExitCode::FAILURE
        }
    }
}

fn arg(args: &[String], i: usize, what: &str) -> Result<String, String> {
    args.get(i)
        .cloned()
        .ok_or_else(|| format!("missing {what}; usage: tpm-floor HOST PORT rsa|ecc MASK COUNT"))
}

fn run() -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    let host = arg(&args, 1, "HOST")?;
    let port: u16 = arg(&args, 2, "PORT")?
        .parse()
        .map_err(|e| format!("PORT: {e}"))?;
    let alg = match arg(&args, 3, "ALG")?.as_str() {
        "rsa" => KeyAlg::Rsa2048,
        "ecc" => KeyAlg::EccP256,
        other => return Err(format!("ALG must be rsa or ecc, not {other}")),
    };
    let mask_text = arg(&args, 4, "MASK")?;
    let bits = u32::from_str_radix(mask_text.trim_start_matches("0x"), 16)
        .map_err(|e| format!("MASK: {e}"))?;
    let mask = PcrMask::new(bits).map_err(|_| format!("MASK {mask_text}: PCRs 0..23 only"))?;
    let count: usize = arg(&args, 5, "COUNT")?
        .parse()
        .map_err(|e| format!("COUNT: {e}"))?;

    let transport =
        TpmTransport::tcp(&host, port, Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let (mut cmd, mut rsp) = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut tpm = Tpm::new(transport, &mut cmd, &mut rsp);
    let _ = tpm.flush_leftovers().block_on();
    let mut public = vec![0u8; 1024];
    let ek = tpm
        .create_ek(alg, None, &mut public)
        .block_on()
        .map_err(|e| format!("create EK: {e}"))?;
    let (mut ak_pub, mut ak_priv) = (vec![0u8; 1024], vec![0u8; 2048]);
    let timings = tpm
        .create_ak(ek.key(), alg, HashAlg::Sha256, &mut ak_pub, &mut ak_priv)
        .block_on()
        .map_err(|e| format!("create AK: {e}"))
        .and_then(|created| {
            let (public, private) = (
                ak_pub.get(..created.public_len).unwrap_or_default(),
                ak_priv.get(..created.private_len).unwrap_or_default(),
            );
            tpm.load_ak(ek.key(), public, private)
                .block_on()
                .map_err(|e| format!("load AK: {e}"))
        })
        .and_then(|ak| {
            let result = quotes(&mut tpm, ak, mask, count);
            let _ = tpm.flush(ak).block_on();
            result
        });
    if ek.transient {
        let _ = tpm.flush(ek.handle).block_on();
    }
    let mut ms = timings?;
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        let last = ms.len().saturating_sub(1);
        // nearest-rank percentile
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((q * ms.len() as f64).ceil() as usize)
            .saturating_sub(1)
            .min(last);
        ms.get(i).copied().unwrap_or(f64::NAN)
    };
    let alg_name = if alg == KeyAlg::Rsa2048 { "rsa" } else { "ecc" };
    Ok(format!(
        "{{\"alg\":\"{alg_name}\",\"mask\":\"{mask_text}\",\"count\":{count},\"median_ms\":{:.3},\"p95_ms\":{:.3},\"min_ms\":{:.3}}}",
        at(0.5),
        at(0.95),
        ms.first().copied().unwrap_or(f64::NAN)
    ))
}

fn quotes(
    tpm: &mut Tpm<'_, TpmTransport>,
    ak: u32,
    mask: PcrMask,
    count: usize,
) -> Result<Vec<f64>, String> {
    // The payload key digest PCR 16 is extended with; its value does not
    // change the TPM's work.
    let data_digest = HashAlg::Sha256.hash(b"tpm-floor payload key");
    let nonce = b"abcdefghij0123456789";
    let mut out = vec![0u8; 8192];
    let mut ms = Vec::with_capacity(count);
    for _ in 0..count {
        let req = QuoteRequest {
            ak,
            nonce,
            bank: HashAlg::Sha256,
            mask,
            data_digest: data_digest.as_bytes(),
        };
        let t0 = Instant::now();
        tpm.quote(&req, &mut out)
            .block_on()
            .map_err(|e| format!("quote: {e}"))?;
        ms.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}
