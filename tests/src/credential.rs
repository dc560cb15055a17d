//! The registrar's credential challenge, played against a real TPM: the
//! TPM itself makes the credential for an AK's Name under the EK
//! (TPM2_MakeCredential), and keylet-core activates it through the EK.

use keylet_core::agent::{AgentError, EkHandle, Tpm};
use keylet_core::tpm::transport::BlockOn as _;
use keylet_core::tpm::transport::Transport;
use keylet_core::tpm::{Handle, command_keys, name, reader};

/// Makes a credential carrying `secret` for the AK `ak_public` under `ek`
/// and activates it with the loaded AK `ak`; the secret that came back.
///
/// # Panics
///
/// If the AK public area or MakeCredential's answer is malformed (a test
/// helper).
#[allow(clippy::expect_used)]
pub fn round_trip<T: Transport>(
    tpm: &mut Tpm<'_, T>,
    ek: EkHandle,
    ak: Handle,
    ak_public: &[u8],
    secret: &[u8],
) -> Result<Vec<u8>, AgentError<T::Error>> {
    let ak_name = name::of_tpm2b_public(ak_public).expect("AK public area");
    let (blob, enc) = {
        let r = tpm
            .execute(|b| command_keys::make_credential(b, ek.handle, secret, ak_name.as_bytes()))
            .block_on()?;
        let (blob, enc) = reader::make_credential(r.parameters).expect("MakeCredential answer");
        (blob.to_vec(), enc.to_vec())
    };
    let mut out = [0u8; 64];
    let n = tpm
        .activate_credential(ak, ek, &blob, &enc, &mut out)
        .block_on()?;
    Ok(out.get(..n).unwrap_or_default().to_vec())
}
