//! The CLI's flag values: any text, as each kind of parameter, inline or through a
//! `file://` path, either converts to a JSON value of that kind or is refused with a message
//! naming the flag — never a panic.
#![no_main]

use garrison_model::cli_args::convert;
use garrison_model::ops::{In, Kind, Param};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const KINDS: [Kind; 6] = [Kind::String, Kind::Integer, Kind::Boolean, Kind::Object, Kind::Array, Kind::Json];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let kind = KINDS[usize::from(sel) % KINDS.len()];
    let text = String::from_utf8_lossy(rest).into_owned();
    let p = Param { name: "scope", kind, location: In::Body, required: false, help: "" };
    // Half the inputs go through a file, as `--scope file://…` would.
    let raw = if sel & 0x80 != 0 {
        let path = std::env::temp_dir().join(format!("garrison-fuzz-arg-{}", std::process::id()));
        std::fs::write(&path, rest).unwrap();
        format!("file://{}", path.display())
    } else {
        text
    };
    match convert(&p, &raw) {
        Ok(v) => match kind {
            Kind::Object => assert!(v.is_object(), "{v}"),
            Kind::Array => assert!(v.is_array(), "{v}"),
            Kind::Integer => assert!(v.is_i64() || v.is_u64(), "{v}"),
            Kind::Boolean => assert!(v.is_boolean(), "{v}"),
            Kind::String => assert!(matches!(v, Value::String(_)), "{v}"),
            Kind::Json => {}
        },
        Err(e) => assert!(e.0.contains("--scope"), "the error names the flag: {}", e.0),
    }
});
