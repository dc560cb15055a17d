//! The evidence the verifier asks for (the answer to the capabilities
//! `POST`), checked against what keylet offered.

use keylet_core::pcr::{HashAlg, PcrMask};
use std::collections::BTreeMap;

use serde::Deserialize;

use super::attestation::{IMA, QUOTE, UEFI};
use super::{Read, Single, challenge};
use crate::keylime::{JsonError, decode};

/// The most items an answer may ask for (keylet offers 3).
const MAX_ITEMS: usize = 8;

/// One item of evidence the verifier asked for, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A TPM quote: the decoded challenge (TPM2_Quote's qualifyingData) and
    /// the PCRs of keylet's bank.
    Quote { challenge: Vec<u8>, pcrs: PcrMask },
    /// IMA log lines from the first one to send, at most `entry_count`.
    Ima {
        starting_offset: u64,
        entry_count: Option<u64>,
    },
    /// The whole UEFI (measured-boot) log.
    Uefi,
}

#[derive(Debug, Deserialize)]
struct Attributes {
    evidence_requested: Vec<Item>,
}

#[derive(Debug, Deserialize)]
struct Item {
    evidence_class: Option<String>,
    evidence_type: Option<String>,
    chosen_parameters: Option<Parameters>,
}

/// The `chosen_parameters` of any item (or authentication method): each
/// kind reads its own.
#[derive(Debug, Deserialize)]
pub(super) struct Parameters {
    pub(super) challenge: Option<String>,
    hash_algorithm: Option<String>,
    signature_scheme: Option<String>,
    /// Bank name to PCR numbers (`null`: a bank not chosen).
    selected_subjects: Option<BTreeMap<String, Option<Vec<i64>>>>,
    starting_offset: Option<u64>,
    entry_count: Option<u64>,
}

fn quote(
    params: Option<&Parameters>,
    base: &str,
    bank: HashAlg,
    scheme: &str,
) -> Result<Requested, JsonError> {
    let params = params.ok_or_else(|| JsonError::at(base, "missing"))?;
    let path = |field: &str| format!("{base}/{field}");
    let offered_bank = bank.name();
    let challenge = challenge(params.challenge.as_deref(), &path("challenge"))?;
    for (field, asked, offered, option) in [
        (
            "hash_algorithm",
            &params.hash_algorithm,
            offered_bank,
            " (tpm_hash_alg)",
        ),
        ("signature_scheme", &params.signature_scheme, scheme, ""),
    ] {
        if let Some(asked) = asked
            && asked != offered
        {
            return Err(JsonError::at(
                path(field),
                format!("{asked:?}, but keylet offered only {offered}{option}"),
            ));
        }
    }
    let subjects = params.selected_subjects.as_ref().ok_or_else(|| {
        JsonError::at(path("selected_subjects"), "missing: an object of PCR banks")
    })?;
    let mut pcrs = PcrMask::EMPTY;
    for (name, list) in subjects {
        let Some(list) = list else {
            continue; // null: a bank not chosen
        };
        if name != offered_bank {
            return Err(JsonError::at(
                path("selected_subjects"),
                format!("asks for PCRs of the {name} bank, but keylet offered only {offered_bank}"),
            ));
        }
        for (i, pcr) in list.iter().enumerate() {
            let n = u8::try_from(*pcr).ok().filter(|n| *n < 24).ok_or_else(|| {
                JsonError::at(
                    format!("{base}/selected_subjects/{name}/{i}"),
                    format!("{pcr} is not a PCR 0-23"),
                )
            })?;
            pcrs = pcrs.with(n);
        }
    }
    if pcrs == PcrMask::EMPTY {
        return Err(JsonError::at(path("selected_subjects"), "selects no PCR"));
    }
    Ok(Requested::Quote { challenge, pcrs })
}

/// Reads the answer to the capabilities `POST` (201): the evidence asked
/// for, in the order it must be sent. `bank` and `scheme` are what keylet
/// offered; the verifier cannot choose anything else.
///
/// # Errors
///
/// [`JsonError`] naming the missing or malformed field, or evidence keylet
/// did not offer.
pub fn parse_requested(
    body: &[u8],
    bank: HashAlg,
    scheme: &str,
) -> Result<Vec<Requested>, JsonError> {
    let Single { data } = decode::<Single<Read<Attributes>>>(body)?;
    let items = data.attributes.evidence_requested;
    if items.len() > MAX_ITEMS {
        return Err(JsonError::at(
            "/data/attributes/evidence_requested",
            format!("{} items; keylet offered 3", items.len()),
        ));
    }
    let item = |(i, item): (usize, &Item)| {
        let at = format!("/data/attributes/evidence_requested/{i}");
        let base = format!("{at}/chosen_parameters");
        let params = item.chosen_parameters.as_ref();
        let class = item.evidence_class.as_deref().unwrap_or("");
        let kind = item.evidence_type.as_deref().unwrap_or("");
        Ok(match (class, kind) {
            QUOTE => quote(params, &base, bank, scheme)?,
            IMA => Requested::Ima {
                starting_offset: params
                    .and_then(|p| p.starting_offset)
                    .ok_or_else(|| JsonError::at(format!("{base}/starting_offset"), "missing"))?,
                entry_count: params.and_then(|p| p.entry_count),
            },
            UEFI => Requested::Uefi,
            _ => {
                return Err(JsonError::at(
                    at,
                    format!("asks for {class:?}/{kind:?}, which keylet did not offer"),
                ));
            }
        })
    };
    items.iter().enumerate().map(item).collect()
}
