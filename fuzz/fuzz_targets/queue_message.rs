//! Audit-queue message bodies: any text is a message to act on, to ignore, or to set
//! aside with a reason — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = std::str::from_utf8(data) {
        match garrison_trail::message::parse(body) {
            Ok(garrison_trail::Message::Logs(refs)) => assert!(refs.iter().all(|r| garrison_trail::message::is_trail_log(&r.key))),
            Ok(garrison_trail::Message::Ignore(_)) => {}
            Err(e) => assert!(!e.0.is_empty()),
        }
    }
});
