//! Audit-queue message bodies (S3, SNS, CloudTrail notifications, EventBridge events and
//! findings): any
//! text is a message to act on, to ignore, or to set aside with a reason — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        match garrison_trail::message::parse(body) {
            Ok(garrison_trail::Message::Logs(refs)) => assert!(refs.iter().all(|r| garrison_trail::message::is_trail_log(&r.key))),
            Ok(garrison_trail::Message::Ignore(_)) => {}
            // An EventBridge event's detail goes through the log files' record parser.
            Ok(garrison_trail::Message::Event { detail, .. }) => {
                assert!(detail.starts_with('{'));
                let _ = garrison_trail::digest_record(&detail, None);
            }
            // A finding event is read into a finding, or refused naming the field.
            Ok(garrison_trail::Message::Finding { source, event }) => {
                if let Err(m) = garrison_model::finding::observe(&event, source) {
                    assert!(!m.0.is_empty());
                }
            }
            Err(e) => assert!(!e.0.is_empty()),
        }
    }
});
