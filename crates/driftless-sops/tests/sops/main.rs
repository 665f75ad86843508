//! Decryption checked against the real `sops` (built by
//! `scripts/ci/install-sops.sh`): fixtures are encrypted at test time with
//! fresh keys, and driftless must print exactly what `sops --decrypt` prints.

mod bad_input;
mod formats;
mod support;
