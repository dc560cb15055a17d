//! Checks: the TPM opens and answers, its clock and dictionary-attack state,
//! the EK, its certificate in NV and that certificate's chain, and that the
//! saved AK loads under this EK.
//!
//! Nothing is changed: no leftovers are flushed (they may be a running
//! keylet's), the transient EK and a loaded AK are flushed again at once, and
//! nothing is made persistent.

use keylet_core::tpm::transport::BlockOn as _;
use std::path::Path;
use std::time::Duration;

use keylet_core::agent::{BUFFER_SIZE, Tpm};
use keylet_core::tpm::capability::{self, CAP_TPM_PROPERTIES, PT_MANUFACTURER};
use keylet_core::tpm::command;

use super::report::{Finding, Outcome, Report, fail, warn};
use super::{ek_chain, lockout};
use crate::agent::choose_device;
use crate::config::AgentConfig;
use crate::state::AgentState;
use crate::tpm::{Failure, TpmDevice, TpmTransport, TransportError};

/// How long the doctor waits for one TPM response. Shorter than the agent's:
/// a TPM that does not answer in this time is reported, not waited for.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

const MAX_EK_CERT: usize = 4096;

fn open_fix(device: &TpmDevice) -> String {
    match device {
        TpmDevice::Path(p) => format!(
            "check that {} exists and that this user may open it (group tss; /dev/tpmrm0 is \
             shared, /dev/tpm0 is held by one process at a time), or set tpm_device",
            p.display()
        ),
        TpmDevice::Tcp { .. } => "start the TPM simulator (swtpm socket --tpm2 --server \
             type=tcp,port=N ...) or correct tpm_device / TCTI; swtpm serves one connection \
             at a time, so stop a running keylet first"
            .into(),
        TpmDevice::Fd(_) => "start keylet doctor with the TPM descriptor open, or set tpm_device \
             to a device path"
            .into(),
        TpmDevice::Mssim { port, .. } => format!(
            "start the TPM simulator with its TPM port {port} and platform port {} or correct \
             tpm_device / TCTI",
            u32::from(*port) + 1
        ),
    }
}

/// The TPM `tpm_device` names, opened; the `tpm.device` problem when it is not.
fn open(c: &AgentConfig, agent_running: bool) -> Result<(TpmDevice, TpmTransport), Finding> {
    let fix = "set tpm_device to a device path, tcp://HOST:PORT, fd://N, swtpm:port=P or \
               mssim:host=H,port=P";
    let device = choose_device(c.tpm_device.as_deref());
    let device = device.map_err(|e| fail(format!("tpm_device / TCTI: {e}"), fix))?;
    if agent_running && matches!(device, TpmDevice::Tcp { .. }) {
        let why = "swtpm serves one connection at a time and the running keylet holds it";
        let fix = "stop keylet and run keylet doctor again to check the TPM";
        return Err(warn(format!("{device} not checked: {why}"), fix));
    }
    match crate::tpm::open(&device, TIMEOUT) {
        Ok(t) => Ok((device, t)),
        Err(TransportError {
            failure: Failure::Open(source),
            ..
        }) if agent_running && source.raw_os_error() == Some(nix::libc::EBUSY) => Err(warn(
            format!("{device} not checked: the running keylet holds it ({source})"),
            "use /dev/tpmrm0 (the kernel resource manager) so that tools can share the TPM, \
                 or stop keylet and run keylet doctor again",
        )),
        Err(e) => Err(fail(e.to_string(), open_fix(&device))),
    }
}

/// Runs the TPM checks; `ek_store` is the CA store for the EK chain;
/// `agent_running`: a keylet with this configuration holds the listen port.
/// Returns the EK TPM2B_PUBLIC, when the EK could be read.
pub(crate) fn check(
    report: &mut Report,
    c: &AgentConfig,
    state: Option<&AgentState>,
    ek_store: Option<&Path>,
    agent_running: bool,
) -> Option<Vec<u8>> {
    // Until the TPM answers, a check that fails is the only one.
    let (device, mut transport) = open(c, agent_running)
        .map_err(|p| report.add("tpm.device", Err(p)))
        .ok()?;
    let (mut cmd, mut rsp) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
    let mut tpm = Tpm::new(&mut transport, &mut cmd, &mut rsp)
        .with_endorsement_password(&c.tpm_ownerpassword);
    // The manufacturer ID as text ("IBM", "INTC", ...).
    let answers = tpm
        .execute(|b| command::get_capability(b, CAP_TPM_PROPERTIES, PT_MANUFACTURER, 1))
        .block_on()
        .map_err(|e| e.to_string())
        .and_then(|r| capability::read(r.parameters).map_err(|e| e.to_string()))
        .map(|cap| cap.manufacturer().map_or(String::new(), |m| m.to_string()))
        .map(|m| format!("{device} answers (manufacturer {m:?})"))
        .map_err(|e| {
            let found = format!("{device} opened but does not answer: {e}");
            fail(found, open_fix(&device))
        });
    report.add("tpm.device", answers.clone());
    answers.ok()?;
    report.add("tpm.clock", clock(&mut tpm, c.tpm_clock_repair));
    let da = tpm.read_lockout().block_on().map_err(|e| e.to_string());
    report.add("tpm.lockout", lockout::lockout(da, c, state));
    let ek_public = endorsement(&mut tpm, report, c, state, ek_store);
    #[cfg(feature = "iak")]
    super::device_id::check(&mut tpm, c, report);
    ek_public
}

/// The TPM clock as the verifier will judge it (the doctor does not set it forward).
fn clock(tpm: &mut Tpm<'_, &mut TpmTransport>, repair: bool) -> Outcome {
    let fix = "check that the TPM supports TPM2_ReadClock";
    let c = tpm
        .read_clock()
        .block_on()
        .map_err(|e| warn(format!("cannot read the TPM clock: {e}"), fix))?;
    if c.safe {
        let (resets, seconds) = (c.reset_count, c.clock / 1000);
        return Ok(format!("safe (reset count {resets}, {seconds} s powered)"));
    }
    let detail = format!(
        "not safe: the TPM was reset without TPM2_Shutdown (reset count {}); the verifier fails \
         every quote with an unsafe clock",
        c.reset_count
    );
    Err(if repair {
        warn(
            detail,
            "keylet sets the clock forward when it starts (tpm_clock_repair = true); shut the \
             TPM down orderly (tpm2_shutdown) before reboots",
        )
    } else {
        fail(
            detail,
            "set tpm_clock_repair = true, or wait until the TPM next saves its clock (at most \
             about 70 minutes)",
        )
    })
}

/// The EK, its certificate and chain, and the saved AK under it; returns the
/// EK TPM2B_PUBLIC.
fn endorsement(
    tpm: &mut Tpm<'_, &mut TpmTransport>,
    report: &mut Report,
    c: &AgentConfig,
    state: Option<&AgentState>,
    ek_store: Option<&Path>,
) -> Option<Vec<u8>> {
    let alg = c.tpm_encryption_alg;
    let mut public = vec![0u8; 1024];
    let fix = "check tpm_encryption_alg and ek_handle; an endorsement hierarchy password \
               (tpm_ownerpassword) or a full TPM (tpm2_flushcontext -t) also stops it";
    let ek = tpm
        .create_ek(alg, c.ek_handle, &mut public)
        .block_on()
        .map_err(|e| {
            let problem = fail(format!("cannot make the {alg} EK: {e}"), fix);
            report.add("tpm.ek", Err(problem));
        });
    let ek = ek.ok()?;
    public.truncate(ek.public_len);
    let (said, unused) = crate::agent::ek_origin(alg, ek.handle, ek.origin);
    let fix = format!(
        "keylet creates the EK at every start (seconds on a discrete TPM); if nothing else uses \
         the key at {tcg:#010x}, evict it (tpm2_evictcontrol -C o -c {tcg:#010x}) and persist \
         the EK there (tpm2_createek -c {tcg:#010x} -G {alg})",
        tcg = alg.ek_persistent_handle(),
    );
    let origin = if unused {
        Err(warn(said, fix))
    } else {
        Ok(said)
    };
    report.add("tpm.ek", origin);
    let index = alg.ek_cert_index();
    let mut cert = vec![0u8; MAX_EK_CERT];
    match tpm.read_ek_cert(index, &mut cert).block_on() {
        Ok(n) => {
            let found = format!("EK certificate in NV index {index:#010x} ({n} bytes)");
            report.add("tpm.ek_cert", Ok(found));
            report.add("tpm.ek_cert_chain", ek_chain::check(&cert[..n], ek_store));
        }
        Err(e) => {
            let found = format!("no EK certificate in NV index {index:#010x}: {e}");
            let fix = "keylet registers without one; the tenant then needs require_ek_cert = \
                       False, or provision the certificate into NV";
            report.add("tpm.ek_cert", Err(warn(found, fix)));
        }
    }
    let flush_fix = "run tpm2_flushcontext -t to free the TPM's object slots";
    if let Some(s) = state.filter(|s| s.ek_public == public) {
        let path = c.agent_data_path.display();
        let loaded = match tpm
            .load_ak(ek.key(), &s.ak_public, &s.ak_private)
            .block_on()
        {
            Ok(ak) => tpm.flush(ak).block_on().map_err(|e| {
                let found = format!("the saved AK loads, but flushing it again failed: {e}");
                warn(found, flush_fix)
            }),
            Err(e) => Err(fail(
                format!("the saved AK in {path} does not load: {e}"),
                "the state belongs to another TPM or the TPM was cleared: delete the agent at \
                 the registrar (keylime_tenant -c regdelete -u <id>), move the state file away \
                 and restart keylet",
            )),
        };
        let loads = "the saved AK loads under this TPM's EK";
        report.add("tpm.ak", loaded.map(|()| loads.into()));
    }
    if ek.transient
        && let Err(e) = tpm.flush(ek.handle).block_on()
    {
        let found = format!("could not flush the EK {:#010x}: {e}", ek.handle);
        report.add("tpm.flush", Err(warn(found, flush_fix)));
    }
    Some(public)
}
