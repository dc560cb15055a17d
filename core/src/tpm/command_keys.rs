//! Builders for key, session, NV and credential commands.

use tpm2_protocol::{
    TpmUnmarshal,
    basic::{TpmInt32, TpmUint16, TpmUint32},
    data::{
        Tpm2bData, Tpm2bDigest, Tpm2bEncryptedSecret, Tpm2bIdObject, Tpm2bName, Tpm2bNonce,
        Tpm2bPrivate, Tpm2bPublic, Tpm2bSensitiveCreate, TpmCc, TpmRh, TpmSe, TpmlPcrSelection,
        TpmtPublic, TpmtSymDefObject,
    },
    frame::{
        TpmActivateCredentialCommand, TpmCreateCommand, TpmCreatePrimaryCommand, TpmLoadCommand,
        TpmMakeCredentialCommand, TpmNvReadCommand, TpmNvReadPublicCommand, TpmPolicySecretCommand,
        TpmReadPublicCommand, TpmStartAuthSessionCommand,
    },
};

use super::Handle;
use super::command::{Auth, CommandError, alg_id, marshal};
use crate::pcr::HashAlg;

/// nonceCaller of the policy sessions keylet starts. The sessions are
/// unbound, unsalted and carry no HMAC, so the nonce has no security role;
/// TCG still asks for at least 16 bytes.
const NONCE_CALLER: [u8; 16] = *b"keylet-policy-00";

fn too_long(cc: TpmCc, what: &'static str, len: usize, max: usize) -> CommandError {
    CommandError::TooLong { cc, what, len, max }
}

/// TPM2_CreatePrimary under `hierarchy` (e.g. TPM_RH_ENDORSEMENT 0x4000000B)
/// from `template`, with an empty authValue.
///
/// # Errors
///
/// [`CommandError`] if the template cannot be marshalled into `buf`.
pub fn create_primary<'b>(
    buf: &'b mut [u8],
    hierarchy: Handle,
    hierarchy_auth: Auth<'_>,
    template: &TpmtPublic,
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::CreatePrimary;
    let cmd = TpmCreatePrimaryCommand {
        handles: [TpmUint32::new(hierarchy)],
        in_sensitive: Tpm2bSensitiveCreate::default(),
        in_public: Tpm2bPublic::from(template.clone()),
        outside_info: Tpm2bData::default(),
        creation_pcr: TpmlPcrSelection::default(),
    };
    marshal(buf, &cmd, &[hierarchy_auth.to_command(cc)?])
}

/// TPM2_Create of an ordinary key under `parent` from `template`.
///
/// # Errors
///
/// [`CommandError`] if the template cannot be marshalled into `buf`.
pub fn create<'b>(
    buf: &'b mut [u8],
    parent: Handle,
    parent_auth: Auth<'_>,
    template: &TpmtPublic,
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::Create;
    let cmd = TpmCreateCommand {
        handles: [TpmUint32::new(parent)],
        in_sensitive: Tpm2bSensitiveCreate::default(),
        in_public: Tpm2bPublic::from(template.clone()),
        outside_info: Tpm2bData::default(),
        creation_pcr: TpmlPcrSelection::default(),
    };
    marshal(buf, &cmd, &[parent_auth.to_command(cc)?])
}

/// TPM2_Load of a key under `parent`. `private` and `public` are the
/// TPM2B_PRIVATE and TPM2B_PUBLIC exactly as TPM2_Create returned them
/// (with their 2-byte sizes).
///
/// # Errors
///
/// [`CommandError::Invalid`] if either blob is malformed or has trailing bytes.
pub fn load<'b>(
    buf: &'b mut [u8],
    parent: Handle,
    parent_auth: Auth<'_>,
    private: &[u8],
    public: &[u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::Load;
    let invalid = |what| CommandError::Invalid { cc, what };
    let (in_private, rest) =
        Tpm2bPrivate::unmarshal(private).map_err(|_| invalid("malformed TPM2B_PRIVATE"))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after TPM2B_PRIVATE"));
    }
    let (in_public, rest) =
        Tpm2bPublic::unmarshal(public).map_err(|_| invalid("malformed TPM2B_PUBLIC"))?;
    if !rest.is_empty() {
        return Err(invalid("trailing bytes after TPM2B_PUBLIC"));
    }
    let cmd = TpmLoadCommand {
        handles: [TpmUint32::new(parent)],
        in_private,
        in_public,
    };
    marshal(buf, &cmd, &[parent_auth.to_command(cc)?])
}

/// TPM2_ReadPublic of a loaded or persistent object.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn read_public(buf: &mut [u8], handle: Handle) -> Result<&[u8], CommandError> {
    let cmd = TpmReadPublicCommand {
        handles: [TpmUint32::new(handle)],
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_StartAuthSession of an unbound, unsalted POLICY session with
/// `auth_hash` and no symmetric algorithm.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn start_policy_session(buf: &mut [u8], auth_hash: HashAlg) -> Result<&[u8], CommandError> {
    let cc = TpmCc::StartAuthSession;
    let cmd = TpmStartAuthSessionCommand {
        handles: [
            TpmUint32::new(TpmRh::Null.value()),
            TpmUint32::new(TpmRh::Null.value()),
        ],
        nonce_caller: Tpm2bNonce::try_from(&NONCE_CALLER[..])
            .map_err(|error| CommandError::Marshal { cc, error })?,
        encrypted_salt: Tpm2bEncryptedSecret::default(),
        session_type: TpmSe::Policy,
        symmetric: TpmtSymDefObject::default(),
        auth_hash: alg_id(cc, auth_hash)?,
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_PolicySecret(`auth_handle`) into `session`, with `auth` for the
/// entity (the agent uses TPM_RH_ENDORSEMENT and an empty password).
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn policy_secret<'b>(
    buf: &'b mut [u8],
    auth_handle: Handle,
    auth: Auth<'_>,
    session: Handle,
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::PolicySecret;
    let cmd = TpmPolicySecretCommand {
        handles: [TpmUint32::new(auth_handle), TpmUint32::new(session)],
        nonce_tpm: Tpm2bNonce::default(),
        cp_hash_a: Tpm2bDigest::default(),
        policy_ref: Tpm2bNonce::default(),
        expiration: TpmInt32::new(0),
    };
    marshal(buf, &cmd, &[auth.to_command(cc)?])
}

/// TPM2_ActivateCredential: `activate` is the key the credential names (the
/// AK, admin role), `key` the decryption key (the EK). `credential_blob` and
/// `secret` are the contents of TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET
/// (without their sizes).
///
/// # Errors
///
/// [`CommandError::TooLong`] if a blob does not fit its field.
pub fn activate_credential<'b>(
    buf: &'b mut [u8],
    activate: (Handle, Auth<'_>),
    key: (Handle, Auth<'_>),
    credential_blob: &[u8],
    secret: &[u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::ActivateCredential;
    let cmd = TpmActivateCredentialCommand {
        handles: [TpmUint32::new(activate.0), TpmUint32::new(key.0)],
        credential_blob: Tpm2bIdObject::try_from(credential_blob)
            .map_err(|_| too_long(cc, "credential blob", credential_blob.len(), 132))?,
        secret: Tpm2bEncryptedSecret::try_from(secret)
            .map_err(|_| too_long(cc, "encrypted secret", secret.len(), 512))?,
    };
    marshal(
        buf,
        &cmd,
        &[activate.1.to_command(cc)?, key.1.to_command(cc)?],
    )
}

/// TPM2_MakeCredential with the loaded public key `key` for the object
/// named `object_name`. Used in tests to produce a credential the TPM can
/// activate.
///
/// # Errors
///
/// [`CommandError::TooLong`] if the credential or name does not fit.
pub fn make_credential<'b>(
    buf: &'b mut [u8],
    key: Handle,
    credential: &[u8],
    object_name: &[u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::MakeCredential;
    let cmd = TpmMakeCredentialCommand {
        handles: [TpmUint32::new(key)],
        credential: Tpm2bDigest::try_from(credential)
            .map_err(|_| too_long(cc, "credential", credential.len(), 64))?,
        object_name: Tpm2bName::try_from(object_name)
            .map_err(|_| too_long(cc, "object name", object_name.len(), 66))?,
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_NV_ReadPublic of NV index `index`.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn nv_read_public(buf: &mut [u8], index: Handle) -> Result<&[u8], CommandError> {
    let cmd = TpmNvReadPublicCommand {
        handles: [TpmUint32::new(index)],
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_NV_Read of `size` bytes at `offset`, authorized by the index itself
/// (AUTHREAD) with an empty password.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn nv_read(
    buf: &mut [u8],
    index: Handle,
    size: u16,
    offset: u16,
) -> Result<&[u8], CommandError> {
    let cc = TpmCc::NvRead;
    let cmd = TpmNvReadCommand {
        handles: [TpmUint32::new(index), TpmUint32::new(index)],
        size: TpmUint16::new(size),
        offset: TpmUint16::new(offset),
    };
    marshal(buf, &cmd, &[Auth::EMPTY.to_command(cc)?])
}
