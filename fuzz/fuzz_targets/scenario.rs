//! Scenario parsing and validation of arbitrary text: an error or a scenario, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tunnelbench::load_scenario_str as load_str;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(s) = load_str(&text, Path::new("fuzz.toml"), &[]) {
        // A valid scenario resolves its architecture and layer names without error.
        let _ = tunnelbench::layer_names(&s.model).expect("valid scenario has layer names");
    }
});
