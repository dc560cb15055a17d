use keylet_core::pcr::{HashAlg, PcrMask};

use super::*;

const SESSION: &str = r#"{"data":{"type":"session","id":"4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11",
 "attributes":{"agent_id":"a","authentication_requested":[{"authentication_class":"pop",
 "authentication_type":"tpm_pop","chosen_parameters":{"challenge":"AAECAwQFBgcICQoLDA0ODw=="}}],
 "created_at":"2026-12-01T02:00:00+00:00","challenges_expire_at":"2026-12-01T02:01:00+00:00"}}}"#;

#[test]
fn session_challenge_is_read_and_checked() {
    let c = parse_session_challenge(SESSION.as_bytes()).unwrap();
    assert_eq!(c.id, "4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11");
    assert_eq!(c.challenge, (0u8..16).collect::<Vec<_>>());
    let doc = |id: &str, methods: &str| {
        format!(
            r#"{{"data":{{"id":"{id}","attributes":{{"authentication_requested":[{methods}]}}}}}}"#
        )
    };
    let pop = |challenge: &str| {
        let method = format!(
            r#"{{"authentication_type":"tpm_pop","chosen_parameters":{{"challenge":"{challenge}"}}}}"#
        );
        doc("x", &method)
    };
    for (bad_body, names) in [
        ("{}".into(), "/data: missing"),
        (
            r#"{"data":{"attributes":{"authentication_requested":[]}}}"#.into(),
            "/data/id: missing",
        ),
        (doc("x/../y", ""), "/data/id: not a session id"),
        (
            doc("x", ""),
            "/data/attributes/authentication_requested: the verifier requested no tpm_pop",
        ),
        (
            pop("!!"),
            "/data/attributes/authentication_requested/0/chosen_parameters/challenge: not base64",
        ),
        (pop(""), "0 bytes"),
        (pop(&STANDARD.encode([0u8; 65])), "65 bytes"),
        ("not json".into(), "not JSON"),
    ] {
        let e = parse_session_challenge(bad_body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(names), "{bad_body}: {e}");
    }
}

#[test]
fn session_outcome_pass_fail_and_garbage() {
    let pass = r#"{"data":{"attributes":{"evaluation":"pass","token":"id.secret","token_expires_at":"2026-12-01T02:03:00+00:00"}}}"#;
    let token = crate::secret::Secret::new("id.secret".to_string());
    let expires_at = Some("2026-12-01T02:03:00+00:00".to_string());
    assert_eq!(
        parse_session_outcome(pass.as_bytes()).unwrap(),
        SessionOutcome::Pass { token, expires_at }
    );
    let fail = r#"{"data":{"attributes":{"evaluation":"fail"}}}"#;
    assert_eq!(
        parse_session_outcome(fail.as_bytes()).unwrap(),
        SessionOutcome::Fail
    );
    for attributes in [
        r#""evaluation":"pass""#,
        r#""evaluation":"pass","token":"has space""#,
        r#""evaluation":"maybe""#,
        r#""evaluation":1"#,
    ] {
        let body = format!(r#"{{"data":{{"attributes":{{{attributes}}}}}}}"#);
        assert!(parse_session_outcome(body.as_bytes()).is_err(), "{body}");
    }
}

/// The request documents, byte for byte as the verifier reads them.
#[test]
fn request_documents_have_the_verifiers_wire_form() {
    let text = |d: Vec<u8>| String::from_utf8(d).unwrap();
    assert_eq!(
        text(session_request("agent")),
        r#"{"data":{"type":"session","attributes":{"agent_id":"agent","authentication_supported":[{"authentication_class":"pop","authentication_type":"tpm_pop"}]}}}"#
    );
    assert_eq!(
        text(session_proof("agent", "sid", &[1, 2], &[3])),
        r#"{"data":{"type":"session","id":"sid","attributes":{"agent_id":"agent","authentication_provided":[{"authentication_class":"pop","authentication_type":"tpm_pop","data":{"message":"AQI=","signature":"Aw=="}}]}}}"#
    );
    let offered = |uefi_version| {
        text(capabilities(&Capabilities {
            bank: HashAlg::Sha256,
            signature_scheme: "rsassa",
            key_algorithm: "rsa",
            key_size: 2048,
            server_identifier: "ak",
            ak_name: &[0, 0x0B, 0xAB],
            ak_public: &[0, 1, 2],
            ima_entries: Some(7),
            uefi_version,
            boot_time: "2026-01-01T00:00:00+00:00",
        }))
    };
    // available_subjects: the verifier requires an object keyed by bank.
    let quote = r#"{"evidence_class":"certification","evidence_type":"tpm_quote","capabilities":{"component_version":"2.0","hash_algorithms":["sha256"],"signature_schemes":["rsassa"],"available_subjects":{"sha256":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23]},"certification_keys":[{"key_class":"asymmetric","key_algorithm":"rsa","key_size":2048,"server_identifier":"ak","local_identifier":"000bab","public":"AAEC","allowable_hash_algorithms":["sha256"],"allowable_signature_schemes":["rsassa"]}]}}"#;
    let uefi = r#"{"evidence_class":"log","evidence_type":"uefi_log","capabilities":{"evidence_version":"2.1","supports_partial_access":false,"appendable":false,"formats":["application/octet-stream"]}}"#;
    let ima = r#"{"evidence_class":"log","evidence_type":"ima_log","capabilities":{"entry_count":7,"supports_partial_access":true,"appendable":true,"formats":["text/plain"]}}"#;
    let document = |items: &[&str]| {
        format!(
            r#"{{"data":{{"type":"attestation","attributes":{{"evidence_supported":[{}],"system_info":{{"boot_time":"2026-01-01T00:00:00+00:00"}}}}}}}}"#,
            items.join(",")
        )
    };
    assert_eq!(offered(None), document(&[quote, ima]));
    assert_eq!(offered(Some("2.1")), document(&[quote, uefi, ima]));
    let collected = evidence(&[
        Collected::Quote {
            message: "m".into(),
            signature: "s".into(),
            subject_data: "p".into(),
        },
        Collected::Ima {
            entries: "a\n".into(),
            entry_count: 1,
        },
        Collected::Uefi {
            entries: "AAEC".into(),
        },
    ]);
    assert_eq!(
        text(collected),
        r#"{"data":{"type":"attestation","attributes":{"evidence_collected":[{"evidence_class":"certification","evidence_type":"tpm_quote","data":{"message":"m","signature":"s","subject_data":"p"}},{"evidence_class":"log","evidence_type":"ima_log","data":{"entries":"a\n","entry_count":1}},{"evidence_class":"log","evidence_type":"uefi_log","data":{"entries":"AAEC"}}]}}}"#
    );
}

const REQUESTED: &str = r#"{"data":{"type":"attestation","id":"3","attributes":{"stage":"awaiting_evidence",
 "evidence_requested":[
  {"evidence_class":"certification","evidence_type":"tpm_quote","chosen_parameters":{
    "challenge":"AAECAwQFBgcICQoLDA0ODw==","signature_scheme":"rsassa","hash_algorithm":"sha256",
    "selected_subjects":{"sha256":[10,15],"sha1":null}}},
  {"evidence_class":"log","evidence_type":"uefi_log","chosen_parameters":{"format":"application/octet-stream"}},
  {"evidence_class":"log","evidence_type":"ima_log","chosen_parameters":{"starting_offset":5,"format":"text/plain"}}]}}}"#;

#[test]
fn evidence_requested_in_order() {
    let r = parse_requested(REQUESTED.as_bytes(), HashAlg::Sha256, "rsassa").unwrap();
    assert_eq!(
        r,
        vec![
            Requested::Quote {
                challenge: (0u8..16).collect(),
                pcrs: PcrMask::EMPTY.with(10).with(15)
            },
            Requested::Uefi,
            Requested::Ima {
                starting_offset: 5,
                entry_count: None
            },
        ]
    );
    let refused = |body: &str, bank, scheme| {
        let e = parse_requested(body.as_bytes(), bank, scheme).unwrap_err();
        e.to_string()
    };
    let e = refused(REQUESTED, HashAlg::Sha384, "rsassa");
    assert!(e.contains("hash_algorithm") && e.contains("sha384"), "{e}");
    let e = refused(REQUESTED, HashAlg::Sha256, "ecdsa");
    assert!(e.contains("signature_scheme"), "{e}");
    for (from, to, names) in [
        ("[10,15]", "[10,24]", "not a PCR"),
        ("[10,15]", "[-1]", "not a PCR"),
        ("[10,15]", "[]", "selects no PCR"),
        (
            "\"starting_offset\":5",
            "\"starting_offset\":-5",
            "starting_offset",
        ),
        ("\"starting_offset\":5", "\"x\":5", "starting_offset"),
        (
            "\"evidence_type\":\"uefi_log\"",
            "\"evidence_type\":\"dna\"",
            "did not offer",
        ),
        ("\"sha1\":null", "\"sha1\":[1]", "sha1 bank"),
    ] {
        let e = refused(&REQUESTED.replacen(from, to, 1), HashAlg::Sha256, "rsassa");
        assert!(e.contains(names), "{to}: {e}");
    }
    let none = r#"{"data":{"attributes":{"evidence_requested":[]}}}"#;
    assert_eq!(
        parse_requested(none.as_bytes(), HashAlg::Sha256, "rsassa").unwrap(),
        vec![]
    );
}

#[test]
fn next_attestation() {
    let meta = |v: &str| format!(r#"{{"meta":{{"seconds_to_next_attestation":{v}}}}}"#);
    // `None`: refused.
    for (body, next) in [
        (meta("2"), Some(Some(2))),
        (meta("-3"), Some(Some(-3))),
        (meta("1.6"), Some(Some(2))),
        (meta("\"soon\""), None),
        (r#"{"data":{}}"#.into(), Some(None)),
        ("<html>".into(), None),
    ] {
        assert_eq!(parse_next_attestation(body.as_bytes()).ok(), next, "{body}");
    }
}

#[test]
fn content_types_and_error_details() {
    for (ct, refused) in [
        (Some("application/vnd.api+json"), ""),
        (Some("application/json; charset=utf-8"), ""),
        (Some("text/html"), "text/html"),
        (None, "no Content-Type"),
    ] {
        let e = check_content_type(ct).err().map(|e| e.to_string());
        assert_eq!(e.is_some(), !refused.is_empty(), "{ct:?}");
        assert!(e.unwrap_or_default().contains(refused), "{ct:?}");
    }
    let body = br#"{"errors":[{"status":"422","detail":"must have a PCR bank","source":{"pointer":"/evidence_supported/0"}}]}"#;
    let detail = |body: &[u8]| error_detail(body).unwrap_or_default();
    assert_eq!(detail(body), "/evidence_supported/0: must have a PCR bank");
    assert_eq!(detail(br#"{"code":404,"status":"Not Found"}"#), "Not Found");
    assert_eq!(error_detail(b"garbage"), None);
}

#[test]
fn agent_status_is_read() {
    let body = br#"{"code":200,"status":"Success","results":{"attestation_status":"PASS","last_successful_attestation":1796092112}}"#;
    assert_eq!(
        parse_agent_status(body).unwrap(),
        AgentStatus {
            attestation_status: "PASS".into(),
            last_successful_attestation: 1_796_092_112
        }
    );
    assert!(parse_agent_status(br#"{"results":{"attestation_status":"PASS"}}"#).is_err());
    assert!(parse_agent_status(br#"{"code":403}"#).is_err());
}
