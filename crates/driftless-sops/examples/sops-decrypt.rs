//! Decrypts sops files and prints them one after the other, as `sops
//! --decrypt FILE` prints each, for the benchmark against the real sops.
//! `--key FILE` (repeatable) adds an age or armored OpenPGP key file;
//! `--repeat N` decrypts every file N more times and prints the mean time of
//! one decryption on stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use driftless_sops::{Format, Keys, decrypt};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sops-decrypt: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut keys = Keys::new();
    let mut files = Vec::new();
    let mut repeat = 0u32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--key" => keys.add_key_file(&PathBuf::from(args.next().ok_or("--key FILE")?))?,
            "--repeat" => repeat = args.next().ok_or("--repeat N")?.parse()?,
            _ => files.push(PathBuf::from(arg)),
        }
    }
    let inputs = files
        .iter()
        .map(|f| {
            Ok((
                std::fs::read(f)?,
                Format::from_path(f),
                f.display().to_string(),
            ))
        })
        .collect::<Result<Vec<_>, std::io::Error>>()?;
    let mut out = std::io::stdout().lock();
    for (bytes, format, name) in &inputs {
        out.write_all(&decrypt(bytes, *format, &keys, name)?)?;
    }
    if repeat > 0 {
        let start = Instant::now();
        for _ in 0..repeat {
            for (bytes, format, name) in &inputs {
                std::hint::black_box(decrypt(bytes, *format, &keys, name)?);
            }
        }
        let each = start.elapsed().as_secs_f64() * 1e6 / f64::from(repeat) / inputs.len() as f64;
        eprintln!("mean per file in process: {each:.0} us");
    }
    Ok(())
}
