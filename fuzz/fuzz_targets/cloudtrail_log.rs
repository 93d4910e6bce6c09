//! The CloudTrail log reader on arbitrary input, both as an inflated document and gzipped:
//! it may find records, bad records or an unreadable file, but never panic, hang or
//! classify a record it did not read.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut records = 0usize;
    let r = garrison_trail::log::read_json(data, |r| {
        records += 1;
        if let Ok(r) = r {
            let _ = garrison_trail::classify(&r, Some("arn:aws:sts::1:assumed-role/r/garrison"));
            let _ = r.principal();
        }
    });
    if let Ok(stats) = r {
        assert_eq!(stats.records, records);
        assert!(stats.bad <= stats.records);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    let gz = gz.finish().unwrap();
    let _ = garrison_trail::digest_gz(&gz, None);
    // And the raw bytes as if they were a gzip file.
    let _ = garrison_trail::digest_gz(data, None);
});
