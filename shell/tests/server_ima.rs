//! The IMA and measured-boot logs: `ima_ml_entry` semantics, a growing and a
//! shrinking log, and large logs streamed through the HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use keylet::logs::{ImaLog, MeasuredBootLog};
use server_support::{http, start, write_temp};

fn ima_line(i: usize) -> String {
    format!(
        "10 {:040x} ima-ng sha256:{:064x} /usr/lib/file-{i}\n",
        i * 7919,
        i * 104_729
    )
}

fn ima_text(lines: std::ops::Range<usize>) -> String {
    lines.map(ima_line).collect()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The bytes `slice_from(entry)` selects, and the entry it reports.
fn read_from(log: &ImaLog, entry: u64) -> (String, u64) {
    let slice = log.slice_from(entry).unwrap();
    let mut buf = vec![0u8; usize::try_from(slice.end - slice.start).unwrap()];
    let mut done = 0;
    while done < buf.len() {
        let n = log
            .read_at(&mut buf[done..], slice.start + done as u64)
            .unwrap();
        assert!(n > 0);
        done += n;
    }
    (String::from_utf8(buf).unwrap(), slice.entry)
}

#[test]
fn entry_semantics_follow_keylime() {
    let path = write_temp(
        "ima",
        "log",
        format!("{}10 partial", ima_text(0..5)).as_bytes(),
    );
    let log = ImaLog::open(&path).unwrap();
    assert_eq!(
        log.line_count().unwrap(),
        5,
        "the unterminated line is not counted"
    );
    assert_eq!(read_from(&log, 0), (ima_text(0..5), 0));
    assert_eq!(read_from(&log, 3), (ima_text(3..5), 3));
    assert_eq!(read_from(&log, 5), (String::new(), 5));
    assert_eq!(
        read_from(&log, 6),
        (ima_text(0..5), 0),
        "past the end: whole log"
    );
    assert_eq!(read_from(&log, u64::MAX), (ima_text(0..5), 0));
}

#[test]
fn a_growing_log_is_followed_and_a_shrunk_one_reindexed() {
    let path = write_temp("ima", "log", ima_text(0..3).as_bytes());
    let log = ImaLog::open(&path).unwrap();
    assert_eq!(read_from(&log, 3), (String::new(), 3));
    // A line arrives in two writes: only complete lines count.
    let line3 = ima_line(3);
    let (first, second) = line3.split_at(10);
    append(&path, first);
    assert_eq!(read_from(&log, 3), (String::new(), 3));
    append(&path, &format!("{second}{}", ima_text(4..6)));
    assert_eq!(read_from(&log, 3), (ima_text(3..6), 3));
    assert_eq!(read_from(&log, 1), (ima_text(1..6), 1));
    // After a "reboot" the log is shorter: the index starts over.
    std::fs::write(&path, ima_text(100..102)).unwrap();
    assert_eq!(log.line_count().unwrap(), 2);
    assert_eq!(read_from(&log, 1), (ima_text(101..102), 1));
    assert_eq!(read_from(&log, 6), (ima_text(100..102), 0));
}

#[test]
fn offsets_are_right_across_many_checkpoints() {
    let total = 10_000;
    let path = write_temp("ima", "log", ima_text(0..4_000).as_bytes());
    let log = ImaLog::open(&path).unwrap();
    assert_eq!(log.line_count().unwrap(), 4_000);
    append(&path, &ima_text(4_000..total));
    for entry in [
        0usize, 1, 1023, 1024, 1025, 2048, 3999, 4000, 4001, 8191, 9999,
    ] {
        let (text, got) = read_from(&log, entry as u64);
        assert_eq!(got, entry as u64);
        assert_eq!(text, ima_text(entry..total), "entry {entry}");
    }
}

#[test]
fn new_lines_take_one_short_read_and_a_long_scan_is_left_to_slice_from() {
    let path = write_temp("ima", "log", ima_text(0..3_000).as_bytes());
    let log = ImaLog::open(&path).unwrap();
    // The first scan of a long log takes more than one read.
    assert_eq!(log.try_slice_from(0).unwrap(), None);
    assert_eq!(read_from(&log, 2_999), (ima_text(2_999..3_000), 2_999));
    // The verifier's next poll: from the lines it has, with a few new ones.
    append(&path, &ima_text(3_000..3_005));
    let slice = log.try_slice_from(3_000).unwrap();
    let fresh = ImaLog::open(&path).unwrap();
    assert_eq!(slice, Some(fresh.slice_from(3_000).unwrap()));
    // An older line takes a scan from a checkpoint: left to slice_from too.
    assert_eq!(log.try_slice_from(2_000).unwrap(), None);
    assert_eq!(read_from(&log, 2_000), (ima_text(2_000..3_005), 2_000));
    // Many new lines (about 56 kB): left to slice_from, which finds them.
    append(&path, &ima_text(3_005..3_400));
    assert_eq!(log.try_slice_from(3_005).unwrap(), None);
    assert_eq!(read_from(&log, 3_005), (ima_text(3_005..3_400), 3_005));
    assert_eq!(read_from(&log, 1_500), (ima_text(1_500..3_400), 1_500));
}

fn integrity(entry: u64, mask: &str) -> String {
    format!("/v2.6/quotes/integrity?nonce=n0nce&mask={mask}&partial=1&ima_ml_entry={entry}")
}

#[tokio::test]
async fn quotes_carry_the_ima_list_only_with_pcr10() {
    let mut text = ima_text(0..4);
    // Characters JSON must escape, and bytes that are not UTF-8.
    text.push_str("10 aa ima-ng sha256:bb /tmp/\"quoted\"\\back\tslash\n");
    let mut bytes = text.clone().into_bytes();
    bytes.extend_from_slice(b"10 cc ima-ng sha256:dd /tmp/latin1-\xe9\n");
    let path = write_temp("ima", "log", &bytes);
    let log = Arc::new(ImaLog::open(&path).unwrap());
    let s = start(None, |c| c.ima_log = Some(Arc::clone(&log))).await;

    let r = http(s.addr, "GET", &integrity(0, "0x408400")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let results = &r.json()["results"];
    let expected = format!("{text}10 cc ima-ng sha256:dd /tmp/latin1-\u{fffd}\n");
    assert_eq!(results["ima_measurement_list"], expected.as_str());
    assert_eq!(results["ima_measurement_list_entry"], 0);
    assert!(
        results["ima_measurement_list_entry"].is_u64(),
        "an integer, not a string"
    );

    let r = http(s.addr, "GET", &integrity(2, "0x400")).await;
    let expected_tail: String = expected.split_inclusive('\n').skip(2).collect();
    assert_eq!(
        r.json()["results"]["ima_measurement_list"],
        expected_tail.as_str()
    );
    assert_eq!(r.json()["results"]["ima_measurement_list_entry"], 2);

    let r = http(s.addr, "GET", &integrity(6, "0x400")).await;
    assert_eq!(r.json()["results"]["ima_measurement_list"], "");
    assert_eq!(r.json()["results"]["ima_measurement_list_entry"], 6);

    let r = http(s.addr, "GET", &integrity(7, "0x400")).await;
    assert_eq!(r.json()["results"]["ima_measurement_list_entry"], 0);
    assert_eq!(
        r.json()["results"]["ima_measurement_list"],
        expected.as_str()
    );

    // Without PCR 10 the list is left out.
    let r = http(s.addr, "GET", &integrity(0, "0x8000")).await;
    let results = &r.json()["results"];
    assert!(results.get("ima_measurement_list").is_none(), "{results}");
    assert!(results.get("ima_measurement_list_entry").is_none());

    // Lines appended between polls are picked up.
    append(&path, &ima_line(50));
    let r = http(s.addr, "GET", &integrity(6, "0x400")).await;
    assert_eq!(
        r.json()["results"]["ima_measurement_list"],
        ima_line(50).as_str()
    );
    s.shutdown().await;
}

#[tokio::test]
async fn a_20_mb_log_and_the_boot_log_stream_intact() {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 20 * 1024 * 1024 {
        text.push_str(&ima_line(i));
        i += 1;
    }
    let lines = i;
    let ima_path = write_temp("ima", "big", text.as_bytes());
    let boot: Vec<u8> = (0..200_003u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let boot_path = write_temp("ima", "boot", &boot);
    let ima = Arc::new(ImaLog::open(&ima_path).unwrap());
    let mb = Arc::new(MeasuredBootLog::open(&boot_path).unwrap());
    let s = start(None, |c| {
        c.ima_log = Some(ima);
        c.mb_log = Some(mb);
    })
    .await;

    let r = http(s.addr, "GET", &integrity(0, "0x1")).await;
    let results = &r.json()["results"];
    assert!(
        results.get("ima_measurement_list").is_none(),
        "PCR 10 not asked for"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(&boot);
    assert_eq!(results["mb_measurement_list"], b64.as_str());

    let r = http(s.addr, "GET", &integrity(0, "0x401")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["transfer-encoding"], "chunked",
        "streamed, not buffered"
    );
    let results = &r.json()["results"];
    assert_eq!(
        results["ima_measurement_list"].as_str().unwrap().len(),
        text.len()
    );
    assert!(results["ima_measurement_list"] == text.as_str());
    assert_eq!(results["ima_measurement_list_entry"], 0);
    assert_eq!(results["mb_measurement_list"], b64.as_str());

    let from = lines - 3;
    let r = http(s.addr, "GET", &integrity(from as u64, "0x400")).await;
    assert_eq!(
        r.json()["results"]["ima_measurement_list"],
        ima_text(from..lines).as_str()
    );
    s.shutdown().await;
}
