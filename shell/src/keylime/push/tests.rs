use keylet_core::pcr::{HashAlg, PcrMask};
use serde_json::Value;

use super::*;

/// A request document as JSON, to look at its shape.
fn json(d: &[u8]) -> Value {
    serde_json::from_slice(d).unwrap()
}

const SESSION: &str = r#"{"data":{"type":"session","id":"4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11",
 "attributes":{"agent_id":"a","authentication_requested":[{"authentication_class":"pop",
 "authentication_type":"tpm_pop","chosen_parameters":{"challenge":"AAECAwQFBgcICQoLDA0ODw=="}}],
 "created_at":"2026-12-01T02:00:00+00:00","challenges_expire_at":"2026-12-01T02:01:00+00:00"}}}"#;

#[test]
fn session_challenge_is_read_and_checked() {
    let c = parse_session_challenge(SESSION.as_bytes()).unwrap();
    assert_eq!(c.id, "4f1c1e0e-7d1b-4d4a-9a53-0c3f7e0e2b11");
    assert_eq!(c.challenge, (0u8..16).collect::<Vec<_>>());
    for (bad_body, names) in [
        ("{}", "/data: missing"),
        (
            r#"{"data":{"attributes":{"authentication_requested":[]}}}"#,
            "/data/id: missing",
        ),
        (
            r#"{"data":{"id":"x/../y","attributes":{"authentication_requested":[]}}}"#,
            "/data/id: not a session id",
        ),
        (
            r#"{"data":{"id":"x","attributes":{"authentication_requested":[]}}}"#,
            "/data/attributes/authentication_requested: the verifier requested no tpm_pop",
        ),
        (
            r#"{"data":{"id":"x","attributes":{"authentication_requested":[{"authentication_type":"tpm_pop","chosen_parameters":{"challenge":"!!"}}]}}}"#,
            "/data/attributes/authentication_requested/0/chosen_parameters/challenge: not base64",
        ),
        (
            r#"{"data":{"id":"x","attributes":{"authentication_requested":[{"authentication_type":"tpm_pop","chosen_parameters":{"challenge":""}}]}}}"#,
            "0 bytes",
        ),
        ("not json", "not JSON"),
    ] {
        let e = parse_session_challenge(bad_body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains(names), "{bad_body}: {e}");
    }
    let long = format!(
        r#"{{"data":{{"id":"x","attributes":{{"authentication_requested":[{{"authentication_type":"tpm_pop","chosen_parameters":{{"challenge":"{}"}}}}]}}}}}}"#,
        STANDARD.encode([0u8; 65])
    );
    assert!(
        parse_session_challenge(long.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("65 bytes")
    );
}

#[test]
fn session_outcome_pass_fail_and_garbage() {
    let pass = r#"{"data":{"attributes":{"evaluation":"pass","token":"id.secret","token_expires_at":"2026-12-01T02:03:00+00:00"}}}"#;
    match parse_session_outcome(pass.as_bytes()).unwrap() {
        SessionOutcome::Pass { token, expires_at } => {
            assert_eq!(token.as_str(), "id.secret");
            assert_eq!(expires_at.as_deref(), Some("2026-12-01T02:03:00+00:00"));
        }
        SessionOutcome::Fail => panic!("pass read as fail"),
    }
    let fail = r#"{"data":{"attributes":{"evaluation":"fail"}}}"#;
    assert_eq!(
        parse_session_outcome(fail.as_bytes()).unwrap(),
        SessionOutcome::Fail
    );
    for bad_body in [
        r#"{"data":{"attributes":{"evaluation":"pass"}}}"#,
        r#"{"data":{"attributes":{"evaluation":"pass","token":"has space"}}}"#,
        r#"{"data":{"attributes":{"evaluation":"maybe"}}}"#,
        r#"{"data":{"attributes":{"evaluation":1}}}"#,
    ] {
        assert!(
            parse_session_outcome(bad_body.as_bytes()).is_err(),
            "{bad_body}"
        );
    }
}

#[test]
fn proof_and_capabilities_have_the_verifiers_shape() {
    let p = json(&session_proof("agent", "sid", &[1, 2], &[3]));
    assert_eq!(
        p["data"]["attributes"]["authentication_provided"][0]["data"]["message"],
        "AQI="
    );
    assert_eq!(p["data"]["id"], "sid");
    let c = json(&capabilities(&Capabilities {
        bank: HashAlg::Sha256,
        signature_scheme: "rsassa",
        key_algorithm: "rsa",
        key_size: 2048,
        server_identifier: "ak",
        ak_name: &[0, 0x0B, 0xAB],
        ak_public: &[0, 1, 2],
        ima_entries: Some(7),
        uefi_version: None,
        boot_time: "2026-01-01T00:00:00+00:00",
    }));
    let items = c["data"]["attributes"]["evidence_supported"]
        .as_array()
        .unwrap();
    assert_eq!(items.len(), 2);
    let quote = &items[0]["capabilities"];
    assert_eq!(quote["component_version"], "2.0");
    // The verifier requires an object keyed by bank, not a list.
    assert_eq!(
        quote["available_subjects"]["sha256"]
            .as_array()
            .unwrap()
            .len(),
        24
    );
    assert_eq!(quote["certification_keys"][0]["local_identifier"], "000bab");
    assert_eq!(items[1]["evidence_type"], "ima_log");
    assert_eq!(items[1]["capabilities"]["entry_count"], 7);
    assert_eq!(items[1]["capabilities"]["formats"][0], "text/plain");
    assert_eq!(
        c["data"]["attributes"]["system_info"]["boot_time"],
        "2026-01-01T00:00:00+00:00"
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
    let e = parse_requested(REQUESTED.as_bytes(), HashAlg::Sha384, "rsassa")
        .unwrap_err()
        .to_string();
    assert!(e.contains("hash_algorithm") && e.contains("sha384"), "{e}");
    let e = parse_requested(REQUESTED.as_bytes(), HashAlg::Sha256, "ecdsa")
        .unwrap_err()
        .to_string();
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
        let body = REQUESTED.replacen(from, to, 1);
        let e = parse_requested(body.as_bytes(), HashAlg::Sha256, "rsassa")
            .unwrap_err()
            .to_string();
        assert!(e.contains(names), "{to}: {e}");
    }
    let none = r#"{"data":{"attributes":{"evidence_requested":[]}}}"#;
    assert_eq!(
        parse_requested(none.as_bytes(), HashAlg::Sha256, "rsassa").unwrap(),
        vec![]
    );
}

#[test]
fn evidence_document_and_next_attestation() {
    let e = json(&evidence(&[
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
    ]));
    let items = &e["data"]["attributes"]["evidence_collected"];
    assert_eq!(items[0]["data"]["subject_data"], "p");
    assert_eq!(items[1]["data"]["entry_count"], 1);
    assert_eq!(items[2]["data"], serde_json::json!({"entries": "AAEC"}));
    assert_eq!(items[2]["evidence_type"], "uefi_log");
    assert_eq!(
        parse_next_attestation(br#"{"meta":{"seconds_to_next_attestation":2}}"#),
        Ok(Some(2))
    );
    assert_eq!(
        parse_next_attestation(br#"{"meta":{"seconds_to_next_attestation":-3}}"#),
        Ok(Some(-3))
    );
    assert_eq!(
        parse_next_attestation(br#"{"meta":{"seconds_to_next_attestation":1.6}}"#),
        Ok(Some(2))
    );
    assert_eq!(parse_next_attestation(br#"{"data":{}}"#), Ok(None));
    assert!(parse_next_attestation(br#"{"meta":{"seconds_to_next_attestation":"soon"}}"#).is_err());
    assert!(parse_next_attestation(b"<html>").is_err());
}

#[test]
fn content_types_and_error_details() {
    assert!(check_content_type(Some("application/vnd.api+json")).is_ok());
    assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
    let e = check_content_type(Some("text/html"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("text/html"), "{e}");
    assert!(
        check_content_type(None)
            .unwrap_err()
            .to_string()
            .contains("no Content-Type")
    );
    let body = br#"{"errors":[{"status":"422","detail":"must have a PCR bank","source":{"pointer":"/evidence_supported/0"}}]}"#;
    assert_eq!(
        error_detail(body).unwrap(),
        "/evidence_supported/0: must have a PCR bank"
    );
    assert_eq!(
        error_detail(br#"{"code":404,"status":"Not Found"}"#).unwrap(),
        "Not Found"
    );
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
