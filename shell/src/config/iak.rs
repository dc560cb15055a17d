//! The TCG device identity options (Keylime's names): `enable_iak_idevid`,
//! the persistent `iak_handle` / `idevid_handle` (or, without them, keys
//! re-created from `iak_idevid_template`), their certificates `iak_cert` /
//! `idevid_cert` and authorization values `iak_password` / `idevid_password`.

use std::path::PathBuf;

use crate::secret::Secret;
use keylet_core::tpm::handle;
use keylet_core::tpm::template_devid::DevIdTemplate;

use super::ConfigError;
use super::parse::parse_password;
use super::value::Values;

/// One device identity key: its persistent handle (`None`: re-created from
/// the template), its certificate file (PEM or DER), and the persistent key's
/// authorization value (empty for none; a re-created key has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceKey {
    pub(crate) handle: Option<u32>,
    pub(crate) cert: PathBuf,
    pub(crate) password: Secret<Vec<u8>>,
}

/// The IAK (Initial Attestation Key: certifies the AK at registration) and
/// the IDevID (Initial Device Identity key), when `enable_iak_idevid` is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceIdSettings {
    pub(crate) iak: DeviceKey,
    pub(crate) idevid: DeviceKey,
    /// `iak_idevid_template`: the TCG template keys without a handle are
    /// re-created from; `None` (`detect`): the one of each certificate's key.
    pub(crate) template: Option<DevIdTemplate>,
}

/// `None` unless `enable_iak_idevid` is on.
pub(super) fn parse(v: &Values<'_>) -> Result<Option<DeviceIdSettings>, ConfigError> {
    // known options, read only with enable_iak_idevid on (the algorithms: with a manual template)
    v.known(&[
        "iak_idevid_template",
        "iak_idevid_asymmetric_alg",
        "iak_idevid_name_alg",
    ]);
    v.known(&["iak_handle", "iak_cert", "iak_password"]);
    v.known(&["idevid_handle", "idevid_cert", "idevid_password"]);
    if !v.boolean("enable_iak_idevid", false)? {
        return Ok(None);
    }
    let template = match v.string("iak_idevid_template", "detect")?.as_str() {
        "" | "detect" | "default" => None,
        s => Some(match DevIdTemplate::from_name(s) {
            Some(DevIdTemplate::H5) => return Err(v.error("iak_idevid_template", H5_REFUSED)),
            Some(t) => t,
            // Keylime: any other value takes the algorithms from the two options.
            None => manual_template(v)?,
        }),
    };
    Ok(Some(DeviceIdSettings {
        iak: key(v, "iak")?,
        idevid: key(v, "idevid")?,
        template,
    }))
}

/// Why H-5 is refused (README, Not supported).
const H5_REFUSED: &str = "detect, H-1 to H-4 or manual: template H-5 (SM2 / SM3-256) is not \
    supported (swtpm's libtpms has no SM3-256; the Keylime registrar reads no SM2 key and no SM3 \
    signature)";

/// The template of `iak_idevid_asymmetric_alg` and `iak_idevid_name_alg`
/// (Keylime's `manual`): the TCG template with that key and name algorithm.
fn manual_template(v: &Values<'_>) -> Result<DevIdTemplate, ConfigError> {
    let lower = |option, default| v.string(option, default).map(|s| s.to_ascii_lowercase());
    let asym = lower("iak_idevid_asymmetric_alg", "rsa")?;
    let name = lower("iak_idevid_name_alg", "sha256")?;
    match (asym.as_str(), name.as_str()) {
        ("rsa", "sha256") => Ok(DevIdTemplate::H1),
        ("ecc", "sha256") => Ok(DevIdTemplate::H2),
        ("ecc", "sha384") => Ok(DevIdTemplate::H3),
        ("ecc", "sha512") => Ok(DevIdTemplate::H4),
        ("ecc", "sm3_256") => Err(v.error("iak_idevid_name_alg", H5_REFUSED)),
        ("rsa" | "ecc", _) => Err(v.error(
            "iak_idevid_name_alg",
            "sha256 (with rsa or ecc), sha384 or sha512 (with ecc): the name algorithms of the \
             TCG device identity templates",
        )),
        _ => Err(v.error(
            "iak_idevid_asymmetric_alg",
            "rsa or ecc (used when iak_idevid_template is neither detect nor H-1 to H-5)",
        )),
    }
}

/// The `iak_*` or `idevid_*` options (`which`).
fn key(v: &Values<'_>, which: &str) -> Result<DeviceKey, ConfigError> {
    let handle_form = format!(
        "a persistent handle in hex ({:#010x} to {:#010x}), or empty to re-create the key from \
         iak_idevid_template",
        handle::PERSISTENT_FIRST,
        handle::PERSISTENT_LAST
    );
    let handle = v.parse(&format!("{which}_handle"), "", &handle_form, |s| match s {
        "" => Some(None),
        s => handle::parse_persistent(s).map(Some),
    })?;
    let cert_form = "the certificate file (PEM or DER) of the key: the registrar refuses an IAK or \
                     IDevID without its certificate (\"default\" is keylime_dir's file of that name)";
    let option = format!("{which}_cert");
    let cert = v.parse(&option, "default", cert_form, |s| match s {
        "" => None,
        "default" => Some(v.dir.join(format!("{which}-cert.crt"))),
        s => Some(v.dir.join(s)),
    })?;
    Ok(DeviceKey {
        handle,
        cert,
        password: parse_password(v, &format!("{which}_password"))?,
    })
}

#[cfg(all(test, feature = "iak"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::{DevIdTemplate, DeviceIdSettings};
    use crate::config::tests::{load, refused};

    const ON: &str = "enable_iak_idevid = true\n";
    const HANDLES: &str = "iak_handle = \"0x81020000\"\nidevid_handle = \"0x81020001\"\n";

    fn settings(agent_section: &str) -> Option<DeviceIdSettings> {
        load(agent_section, &[]).unwrap().config.device_id
    }

    #[test]
    fn off_by_default_and_handles_certificates_and_passwords_checked_when_on() {
        assert_eq!(settings(""), None);
        assert_eq!(settings("iak_handle = \"nonsense\""), None);
        let more = "idevid_cert = \"/etc/keylime/idevid.pem\"\niak_password = \"hex:0102\"";
        let s = settings(&format!("{ON}{HANDLES}{more}")).unwrap();
        let handles = (s.iak.handle, s.idevid.handle);
        assert_eq!(handles, (Some(0x8102_0000), Some(0x8102_0001)));
        assert_eq!(s.template, None);
        assert_eq!(s.iak.cert, Path::new("/var/lib/keylime/iak-cert.crt"));
        assert_eq!(s.idevid.cert, Path::new("/etc/keylime/idevid.pem"));
        assert_eq!(s.iak.password.as_slice(), &[1, 2]);
        assert!(s.idevid.password.is_empty());
        let transient = "iak_handle = \"0x80000001\"\nidevid_handle = \"0x81020001\"";
        refused(&format!("{ON}{transient}"), &["iak_handle", "0x81000000"]);
        let no_cert = format!("{ON}{HANDLES}idevid_cert = \"\"");
        refused(&no_cert, &["idevid_cert", "refuses"]);
    }

    #[test]
    fn without_handles_the_keys_come_from_the_template() {
        let s = settings(&format!("{ON}iak_idevid_template = \"h-2\"")).unwrap();
        assert_eq!((s.iak.handle, s.idevid.handle), (None, None));
        assert_eq!(s.template, Some(DevIdTemplate::H2));
        // Keylime's manual template: the key and name algorithms ("": unset)
        let set = |option: &str, value: &str| match value {
            "" => String::new(),
            v => format!("iak_idevid_{option} = \"{v}\"\n"),
        };
        let manual = |asym, name| {
            let (asym, name) = (set("asymmetric_alg", asym), set("name_alg", name));
            format!("{ON}iak_idevid_template = \"manual\"\n{asym}{name}")
        };
        for (asym, name, template) in [
            ("", "", DevIdTemplate::H1),
            ("ecc", "", DevIdTemplate::H2),
            ("ecc", "sha384", DevIdTemplate::H3),
            ("ecc", "sha512", DevIdTemplate::H4),
        ] {
            let got = settings(&manual(asym, name)).unwrap().template;
            assert_eq!(got, Some(template), "{asym} {name}");
        }
        const ASYM: &str = "iak_idevid_asymmetric_alg";
        const NAME: &str = "iak_idevid_name_alg";
        for (asym, name, needles) in [
            ("dsa", "", &[ASYM, "rsa or ecc"][..]),
            ("", "sha1", &[NAME]),
            ("ecc", "sm3_256", &[NAME, "H-5"]),
        ] {
            refused(&manual(asym, name), needles);
        }
        let h5 = format!("{ON}iak_idevid_template = \"H-5\"");
        refused(&h5, &["iak_idevid_template", "SM3-256"]);
    }
}
