//! Scope keys and deployment bodies: a key either parses to one of the four AWS shapes and
//! renders back to itself, or is refused; any JSON body either validates or is refused with
//! named fields — never a panic.
#![no_main]

use std::collections::{HashMap, HashSet};

use garrison_model::deployment::{Refs, parse_request};
use garrison_model::scope::AssetKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(k) = AssetKey::parse(&text) {
        assert_eq!(k.render(), text, "a parsed key renders back to itself");
        assert!(AssetKey::parse(&k.render()) == Some(k));
    }
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        let policies: HashSet<String> = ["D12D5E67-166C-474F-87AA-6F86FC9FB9BC".to_string()].into();
        let creds: HashMap<String, String> = [("C1".to_string(), "123412341234".to_string())].into();
        if let Err(e) = parse_request(&body, None, &Refs { policies: &policies, credentials: &creds }) {
            assert!(!e.errors.is_empty(), "a refusal names at least one field");
        }
    }
});
