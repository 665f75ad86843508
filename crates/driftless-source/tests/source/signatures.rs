//! Signature verification with real ssh-keygen and gpg keys.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use driftless_source::fetch::FetchError;
use driftless_source::verify::VerifyError;
use driftless_source::{
    Fetcher, PollEvent, Poller, RefSpec, SourceSpec, TrustedKey, Verify, VerifyMode,
};

use crate::support::{Fixture, git, git_with};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ssh_key(path: &Path) -> String {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path));
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    let mut fields = public.split_whitespace();
    let (kind, key) = (fields.next().expect("type"), fields.next().expect("key"));
    format!("ada@example.com {kind} {key}")
}

fn ssh_sign_commit(fx: &Fixture, key: &Path, file: &str, message: &str) -> String {
    std::fs::write(fx.work.join(file), message).expect("write");
    git(&fx.work, &["add", "-A"]);
    let key = key.to_str().expect("utf-8");
    git(
        &fx.work,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &format!("user.signingkey={key}"),
            "commit",
            "-q",
            "-S",
            "-m",
            message,
        ],
    );
    fx.push();
    fx.head()
}

fn policy(mode: VerifyMode, keys: Vec<TrustedKey>) -> Option<Verify> {
    Some(Verify { mode, keys })
}

#[test]
fn ssh_signed_head_commit_is_accepted_and_untrusted_refused() {
    let fx = Fixture::new(&[("a.txt", "unsigned\n")]);
    let keys = fx.tmp.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let trusted = ssh_key(&keys.join("trusted"));
    ssh_key(&keys.join("stranger"));
    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let spec = SourceSpec {
        verify: policy(
            VerifyMode::HeadCommit,
            vec![TrustedKey::SshAllowedSigners(trusted)],
        ),
        ..SourceSpec::new(fx.bare_url(), RefSpec::Branch("main".into()))
    };
    let err = fetcher.fetch(&spec).expect_err("unsigned head refused");
    assert!(
        matches!(
            &err,
            FetchError::Verify {
                source: VerifyError::Untrusted { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("signature not trusted"), "{err}");

    let signed = ssh_sign_commit(&fx, &keys.join("trusted"), "a.txt", "Signed");
    assert_eq!(fetcher.fetch(&spec).expect("trusted signature").sha, signed);
    let poll_cache = tempfile::tempdir().expect("tempdir");
    let poll_fetcher = std::sync::Arc::new(Fetcher::new(poll_cache.path()));
    let mut poller = Poller::new(poll_fetcher, spec.clone(), Duration::from_secs(60));
    assert!(matches!(poller.poll(), Ok(PollEvent::Changed(_))));

    ssh_sign_commit(&fx, &keys.join("stranger"), "a.txt", "Signed by a stranger");
    let err = fetcher.fetch(&spec).expect_err("stranger refused");
    assert!(err.to_string().contains("signature not trusted"), "{err}");
    // The poller refuses the new head and keeps the last verified revision.
    assert!(poller.poll().is_err());
    assert_eq!(
        poller.current().map(|r| r.sha.as_str()),
        Some(signed.as_str())
    );
}

fn gpg(home: &Path, args: &[&str]) -> String {
    run(Command::new("gpg")
        .env("GNUPGHOME", home)
        .args(["--batch", "--no-tty"])
        .args(args))
}

#[test]
fn openpgp_signed_tag_mode() {
    let fx = Fixture::new(&[("a.txt", "1\n")]);
    let home = fx.tmp.path().join("gnupg");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    gpg(
        &home,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            "Ada <ada@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let armored = gpg(&home, &["--armor", "--export", "ada@example.com"]);
    let env = [("GNUPGHOME", home.as_path())];
    git_with(
        &fx.work,
        &[
            "-c",
            "user.signingkey=ada@example.com",
            "tag",
            "-s",
            "v1.0.0",
            "-m",
            "signed release",
        ],
        &env,
    );
    git(&fx.work, &["tag", "-a", "v1.1.0", "-m", "unsigned release"]);
    git(&fx.work, &["tag", "light"]);
    fx.push();
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .status();

    let cache = tempfile::tempdir().expect("tempdir");
    let fetcher = Fetcher::new(cache.path());
    let spec = |tag: &str| SourceSpec {
        verify: policy(VerifyMode::Tag, vec![TrustedKey::OpenPgp(armored.clone())]),
        ..SourceSpec::new(fx.bare_url(), RefSpec::Tag(tag.into()))
    };
    let rev = fetcher.fetch(&spec("v1.0.0")).expect("signed tag accepted");
    assert_eq!(rev.sha, fx.head());
    let err = fetcher
        .fetch(&spec("v1.1.0"))
        .expect_err("unsigned tag refused");
    assert!(err.to_string().contains("tag "), "{err}");
    assert!(err.to_string().contains("signature not trusted"), "{err}");
    let err = fetcher
        .fetch(&spec("light"))
        .expect_err("lightweight tag refused");
    assert!(
        matches!(
            &err,
            FetchError::Verify {
                source: VerifyError::NotAnnotatedTag { .. },
                ..
            }
        ),
        "{err}"
    );

    // Head-commit mode with the same key: the commit itself is unsigned.
    let head = SourceSpec {
        verify: policy(
            VerifyMode::HeadCommit,
            vec![TrustedKey::OpenPgp(armored.clone())],
        ),
        ..spec("v1.0.0")
    };
    assert!(fetcher.fetch(&head).is_err(), "unsigned commit refused");
    let bad_key = SourceSpec {
        verify: policy(
            VerifyMode::Tag,
            vec![TrustedKey::OpenPgp("not a key".into())],
        ),
        ..spec("v1.0.0")
    };
    let err = fetcher.fetch(&bad_key).expect_err("garbage key");
    assert!(
        err.to_string().contains("importing OpenPGP key #0"),
        "{err}"
    );
}
