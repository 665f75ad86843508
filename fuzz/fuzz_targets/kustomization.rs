//! Arbitrary bytes as a kustomization plus up to two resource files: `build`
//! must return Ok or Err, never panic or hang.
#![no_main]

use driftless_kustomize::{Options, build};
use driftless_kustomize_fuzz::{Scratch, split};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static SCRATCH: Scratch = Scratch::new("kustomization");
}

fuzz_target!(|data: &[u8]| {
    // "\n%%%\n" separates the kustomization from the resource files, so
    // seeds stay readable and the fuzzer can grow each part on its own.
    let parts = split(data, b"\n%%%\n", 3);
    let empty: &[u8] = b"";
    let kustomization = parts.first().map_or(empty, Vec::as_slice);
    let a = parts.get(1).map_or(empty, Vec::as_slice);
    let b = parts.get(2).map_or(empty, Vec::as_slice);
    SCRATCH.with(|scratch| {
        let dir = scratch.write(&[
            ("kustomization.yaml", kustomization),
            ("a.yaml", a),
            ("b.yaml", b),
        ]);
        if let Ok(list) = build(dir, &Options::default()) {
            // Rendering what was built must not panic either.
            let _ = list.to_yaml();
        }
    });
});
