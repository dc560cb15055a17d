//! TCG device identity keys on NIST P-384 and P-521, recorded from swtpm
//! (`tpm2_createprimary` from templates H-3 and H-4, `tpm2_readpublic -f
//! tss`): read with their curve, name hash and scheme; a coordinate of the
//! wrong length is refused with its offset; their SPKI is OpenSSL's.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use keylet_core::keylime::spki;
use keylet_core::pcr::HashAlg;
use keylet_core::public::{PublicError, PublicKey, Scheme, alg, read_tpm2b_public};

/// The IAK of TCG template H-3 (ECDSA P-384 / SHA-384).
const IAK_P384: &[u8] = include_bytes!("data/devid/iak-p384.tpm2b");
/// The IDevID of TCG template H-4 (ECDSA P-521 / SHA-512).
const IDEVID_P521: &[u8] = include_bytes!("data/devid/idevid-p521.tpm2b");

#[test]
fn a_p384_iak_is_read_with_its_curve_hash_and_scheme() {
    let p = read_tpm2b_public(IAK_P384).unwrap();
    assert_eq!((p.object_type, p.name_alg), (alg::ECC, HashAlg::Sha384));
    assert_eq!(p.object_attributes, 0x0005_00F2);
    assert_eq!(p.auth_policy.len(), 48);
    assert_eq!(
        p.scheme,
        Scheme {
            alg: alg::ECDSA,
            hash: Some(HashAlg::Sha384)
        }
    );
    let PublicKey::EccP384 { x, y } = p.key else {
        panic!("not a P-384 key: {:?}", p.key);
    };
    assert_eq!((x.len(), y.len()), (48, 48));
    // the point as OpenSSL encodes it: the SPKI ends in 04 || x || y
    let mut der = [0u8; spki::MAX_DER_LEN];
    let n = spki::der(&p.key, &mut der).unwrap();
    assert_eq!(n, 120);
    assert_eq!(&der[n - 97..n], [&[4u8][..], x, y].concat().as_slice());
    for cut in 0..IAK_P384.len() {
        assert!(read_tpm2b_public(&IAK_P384[..cut]).is_err(), "cut {cut}");
    }
}

#[test]
fn a_p521_idevid_is_read_and_a_short_coordinate_refused() {
    let p = read_tpm2b_public(IDEVID_P521).unwrap();
    assert_eq!(
        (p.name_alg, p.scheme.hash),
        (HashAlg::Sha512, Some(HashAlg::Sha512))
    );
    assert!(matches!(p.key, PublicKey::EccP521 { x, y } if x.len() == 66 && y.len() == 66));
    // X one byte short (its size field and the TPM2B's adjusted)
    let x_at = IDEVID_P521.len() - 2 * 68;
    let mut short = IDEVID_P521[..x_at].to_vec();
    short.extend_from_slice(&[0x00, 0x41]);
    short.extend_from_slice(&IDEVID_P521[x_at + 3..]);
    let size = u16::try_from(short.len() - 2).unwrap().to_be_bytes();
    short[..2].copy_from_slice(&size);
    assert_eq!(
        read_tpm2b_public(&short),
        Err(PublicError::BadCoordinate {
            offset: x_at,
            len: 65,
            expected: 66
        })
    );
}
