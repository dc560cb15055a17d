//! Parsers of single `[agent]` options: ids, addresses, algorithms, TPM
//! handles and passwords, `run_as`, API versions.

use std::net::IpAddr;

use keylet_core::alg::{KeyAlg, SignAlg};
use keylet_core::keylime::hex;
use keylet_core::pcr::HashAlg;
use keylet_core::tpm::handle;
use keylet_core::tpm::template::EK_PERSISTENT_RSA;
use zeroize::Zeroizing;

use crate::secret::Secret;

use super::value::Values;
use super::{ConfigError, UuidSetting};
use crate::server::ApiVersion;

pub(super) fn parse_uuid(v: &Values<'_>) -> Result<UuidSetting, ConfigError> {
    let s = v.string("uuid", "hash_ek")?;
    Ok(match s.as_str() {
        "" | "hash_ek" => UuidSetting::HashEk,
        "generate" => UuidSetting::Generate,
        "dmidecode" => UuidSetting::Dmidecode,
        "hostname" => UuidSetting::Hostname,
        // The KEYLIME_AGENT_UUID variable replaces the option's value, so
        // "environment" is left only when that variable is unset (or says so).
        "environment" => {
            return Err(v.error(
                "uuid",
                "environment only with the environment variable KEYLIME_AGENT_UUID set to this \
                 host's UUID (it is not set); or hash_ek, generate, dmidecode, hostname, a UUID",
            ));
        }
        _ => UuidSetting::Explicit(s),
    })
}

pub(super) fn parse_ip(v: &Values<'_>) -> Result<IpAddr, ConfigError> {
    let form = "an IPv4 or IPv6 address (or localhost)";
    v.parse("ip", "127.0.0.1", form, |s| {
        match s.trim_start_matches('[').trim_end_matches(']') {
            "localhost" => Some(IpAddr::from([127, 0, 0, 1])),
            s => s.parse().ok(),
        }
    })
}

/// `tpm_hash_alg`, `tpm_encryption_alg`, and `tpm_signing_alg`, which must
/// be the scheme of the key's family.
pub(super) fn parse_algorithms(v: &Values<'_>) -> Result<(HashAlg, KeyAlg, SignAlg), ConfigError> {
    let lower = |s: &str| s.to_ascii_lowercase();
    let key = v.parse(
        "tpm_encryption_alg",
        "rsa",
        "rsa/rsa2048, rsa3072, ecc/ecc256, ecc384 or ecc521 (the TCG EK templates keylet \
         makes); rsa4096 and SM2 EKs are not supported",
        |s| KeyAlg::from_config_name(&lower(s)),
    )?;
    let alg = v.parse(
        "tpm_signing_alg",
        key.signing_alg().name(),
        "rsassa or ecdsa (the Keylime verifier checks only RSASSA and ECDSA quotes)",
        |s| SignAlg::from_name(&lower(s)),
    )?;
    if alg != key.signing_alg() {
        return Err(v.error(
            "tpm_signing_alg",
            &format!(
                "{} for tpm_encryption_alg {key} (an {key} key cannot sign with {alg})",
                key.signing_alg()
            ),
        ));
    }
    let hash = v.parse(
        "tpm_hash_alg",
        "sha256",
        "sha256, sha384, sha512 or sha1",
        |s| HashAlg::from_name(&lower(s)),
    )?;
    Ok((hash, key, alg))
}

pub(super) fn parse_ek_handle(v: &Values<'_>) -> Result<Option<u32>, ConfigError> {
    let form = format!(
        "generate, or a persistent handle in hex such as {:#010x} ({:#010x} to {:#010x})",
        EK_PERSISTENT_RSA,
        handle::PERSISTENT_FIRST,
        handle::PERSISTENT_LAST
    );
    v.parse("ek_handle", "generate", &form, |s| match s {
        "" | "generate" => Some(None),
        s => handle::parse_persistent(s).map(Some),
    })
}

pub(super) fn parse_password(v: &Values<'_>, option: &str) -> Result<Secret<Vec<u8>>, ConfigError> {
    let s = Zeroizing::new(v.string(option, "")?);
    if let Some(digits) = s.strip_prefix("hex:") {
        let mut out = Zeroizing::new(vec![0; digits.len() / 2]);
        return match hex::decode(digits.as_bytes(), &mut out) {
            Ok(_) => Ok(out.into()),
            Err(_) => Err(v.error(option, "hex:<even number of hex digits>, or plain text")),
        };
    }
    Ok(Secret::new(s.as_bytes().to_vec()))
}

pub(super) fn parse_run_as(v: &Values<'_>) -> Result<Option<(String, String)>, ConfigError> {
    let form = "user:group, or empty to keep the current user";
    v.parse("run_as", "", form, |s| match s.split_once(':') {
        _ if s.is_empty() => Some(None),
        Some((user, group)) if !user.is_empty() && !group.is_empty() => {
            Some(Some((user.to_string(), group.to_string())))
        }
        _ => None,
    })
}

/// The enabled versions, and whether they were pinned (`api_versions` set to
/// `latest` or a list with a supported entry) rather than left to the default.
pub(super) fn parse_api_versions(v: &Values<'_>) -> Result<(Vec<(u8, u8)>, bool), ConfigError> {
    let supported = ApiVersion::SUPPORTED.map(|v| (v.major, v.minor));
    let s = v.string("api_versions", "default")?;
    match s.trim() {
        "" | "default" => return Ok((supported.to_vec(), false)),
        "latest" => return Ok((supported.iter().rev().take(1).copied().collect(), true)),
        _ => {}
    }
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match ApiVersion::parse(item).map(|v| (v.major, v.minor)) {
            Some(ver) if supported.contains(&ver) => out.push(ver),
            _ => v.warn(format!(
                "api_versions entry {item:?} is not supported by keylet (2.1 to 2.6) and is dropped"
            )),
        }
    }
    if out.is_empty() {
        v.warn("api_versions has no supported entry; using the default".into());
        return Ok((supported.to_vec(), false));
    }
    out.sort_unstable();
    out.dedup();
    Ok((out, true))
}
