//! The container image: `scripts/build-image` writes an OCI image layout whose
//! blobs verify, whose config runs driftless as a non-root user, and whose
//! programs run on the loader and libraries the image carries.
//!
//! The static driftless is built here in a light profile (release without
//! optimisation or LTO, into the `imagecheck` directory of the target dir): what
//! is checked is the static link and the image's content, and an optimised cold
//! build would cost CI several minutes more (docs/image.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

const TARGET: &str = "x86_64-unknown-linux-gnu";
const LIB_DIR: &str = "usr/lib/x86_64-linux-gnu";
const USER: &str = "65532:65532";

/// One image for all the tests of this file.
struct Image {
    layout: PathBuf,
    archive: PathBuf,
    digest: String,
    rootfs: PathBuf,
    binary: PathBuf,
    work: PathBuf,
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(build_image)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` and returns its output, failing the test with its stderr unless it succeeds.
fn succeed(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    out
}

/// A static driftless, built with `+crt-static` in the light `imagecheck` profile
/// (defined here through Cargo's environment, so it needs no entry in Cargo.toml).
fn static_driftless() -> PathBuf {
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the tmp dir is inside the target dir")
        .to_path_buf();
    let rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    succeed(
        Command::new(env!("CARGO"))
            .current_dir(workspace())
            .args(["build", "--profile", "imagecheck", "-p", "driftless-cli"])
            .args(["--bin", "driftless", "--target", TARGET])
            .env("CARGO_TARGET_DIR", &target_dir)
            .env(
                "RUSTFLAGS",
                format!("{rustflags} -C target-feature=+crt-static"),
            )
            .env("CARGO_PROFILE_IMAGECHECK_INHERITS", "release")
            .env("CARGO_PROFILE_IMAGECHECK_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_IMAGECHECK_LTO", "false")
            .env("CARGO_PROFILE_IMAGECHECK_CODEGEN_UNITS", "256")
            .env("CARGO_PROFILE_IMAGECHECK_DEBUG", "false")
            .env("CARGO_PROFILE_IMAGECHECK_STRIP", "true")
            .env("CARGO_PROFILE_IMAGECHECK_INCREMENTAL", "false"),
    );
    target_dir.join(TARGET).join("imagecheck").join("driftless")
}

/// Runs scripts/build-image into `out` and returns the digest it prints.
fn run_script(binary: &Path, out: &Path) -> String {
    let output = succeed(
        Command::new(workspace().join("scripts/build-image"))
            .arg("--out")
            .arg(out)
            .arg("--binary")
            .arg(binary)
            .env_remove("SOURCE_DATE_EPOCH"),
    );
    let stdout = text(&output.stdout);
    stdout.trim().lines().last().unwrap_or_default().to_owned()
}

fn build_image() -> Image {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image");
    if work.exists() {
        std::fs::remove_dir_all(&work).expect("remove the last run's image");
    }
    std::fs::create_dir_all(&work).expect("create the work dir");
    let binary = static_driftless();
    let layout = work.join("driftless");
    let digest = run_script(&binary, &layout);
    let rootfs = work.join("rootfs");
    std::fs::create_dir(&rootfs).expect("create rootfs");
    let manifest = blob_json(&layout, &digest);
    for layer in manifest["layers"].as_array().expect("layers") {
        let path = blob_path(&layout, layer["digest"].as_str().expect("digest"));
        succeed(
            Command::new("tar")
                .arg("-xzf")
                .arg(path)
                .arg("-C")
                .arg(&rootfs),
        );
    }
    Image {
        archive: work.join("driftless.tar"),
        layout,
        digest,
        rootfs,
        binary,
        work,
    }
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    let bytes = std::fs::read(blob_path(layout, digest)).expect("read blob");
    serde_json::from_slice(&bytes).expect("blob is JSON")
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that the blob a descriptor names has its digest and size, and returns it.
fn verified_blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("descriptor digest");
    let bytes = std::fs::read(blob_path(layout, digest)).expect("read blob");
    assert_eq!(sha256(&bytes), digest, "blob content matches its name");
    assert_eq!(Some(bytes.len() as u64), descriptor["size"].as_u64());
    bytes
}

fn config(image: &Image) -> Value {
    let manifest = blob_json(&image.layout, &image.digest);
    blob_json(
        &image.layout,
        manifest["config"]["digest"].as_str().expect("config"),
    )
}

#[test]
fn index_manifest_config_and_layers_verify() {
    let image = image();
    let layout = &image.layout;
    let oci_layout: Value =
        serde_json::from_slice(&std::fs::read(layout.join("oci-layout")).expect("oci-layout"))
            .expect("JSON");
    assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index.json"))
            .expect("JSON");
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1);
    let descriptor = &manifests[0];
    assert_eq!(
        descriptor["digest"],
        image.digest.as_str(),
        "the printed digest"
    );
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        format!("ghcr.io/driftless-dev/driftless:v{version}")
    );

    let manifest: Value =
        serde_json::from_slice(&verified_blob(layout, descriptor)).expect("manifest JSON");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let config: Value =
        serde_json::from_slice(&verified_blob(layout, &manifest["config"])).expect("config");
    let layers = manifest["layers"].as_array().expect("layers");
    let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(layers.len(), diff_ids.len());
    assert_eq!(layers.len(), 3, "base, helm, driftless");
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        verified_blob(layout, layer);
        let digest = layer["digest"].as_str().expect("digest");
        let tar = succeed(
            Command::new("gzip")
                .arg("-dc")
                .arg(blob_path(layout, digest)),
        );
        assert_eq!(
            Some(sha256(&tar.stdout).as_str()),
            diff_id.as_str(),
            "diff_id is the digest of the uncompressed layer"
        );
    }

    // The archive holds the same layout.
    let listing = text(&succeed(Command::new("tar").arg("-tf").arg(&image.archive)).stdout);
    let names: Vec<&str> = listing.lines().collect();
    for name in ["oci-layout", "index.json"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for descriptor in layers.iter().chain([&manifest["config"], descriptor]) {
        let digest = descriptor["digest"].as_str().expect("digest");
        let name = format!("blobs/sha256/{}", &digest[7..]);
        assert!(names.contains(&name.as_str()), "{name} in the archive");
    }
}

#[test]
fn the_config_runs_driftless_as_a_non_root_user() {
    let image = image();
    let config = config(image);
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    let run = &config["config"];
    assert_eq!(
        run["Entrypoint"],
        serde_json::json!(["/usr/local/bin/driftless"])
    );
    // The operator when the binary has it, else `serve`; either way a real subcommand.
    let command = run["Cmd"][0].as_str().expect("Cmd");
    assert!(["controller", "serve"].contains(&command), "{run}");
    succeed(
        Command::new(image.rootfs.join("usr/local/bin/driftless"))
            .arg(command)
            .arg("--help"),
    );
    assert_eq!(run["User"], USER);
    assert_eq!(run["WorkingDir"], "/var/lib/driftless");
    let env: Vec<&str> = run["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"HOME=/var/lib/driftless"), "{env:?}");
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=") && e.contains("/usr/local/bin")),
        "{env:?}"
    );
    let port = driftless_api::DEFAULT_LISTEN
        .rsplit(':')
        .next()
        .expect("host:port");
    assert!(
        run["ExposedPorts"].get(format!("{port}/tcp")).is_some(),
        "the port serve listens on by default: {run}"
    );
    let labels = &run["Labels"];
    assert_eq!(labels["org.opencontainers.image.title"], "driftless");
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(labels["org.opencontainers.image.source"].is_string());

    // The user exists, owns its home, and every file else belongs to root.
    let passwd = std::fs::read_to_string(image.rootfs.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.lines().any(
            |l| l.starts_with("driftless:x:65532:65532:") && l.contains(":/var/lib/driftless:")
        ),
        "{passwd}"
    );
    let group = std::fs::read_to_string(image.rootfs.join("etc/group")).expect("group");
    assert!(group.lines().any(|l| l.starts_with("driftless:x:65532:")));
    let manifest = blob_json(&image.layout, &image.digest);
    let base = manifest["layers"][0]["digest"]
        .as_str()
        .expect("base layer");
    let listing = text(
        &succeed(
            Command::new("tar")
                .args(["--numeric-owner", "-tvzf"])
                .arg(blob_path(&image.layout, base)),
        )
        .stdout,
    );
    for line in listing.lines() {
        let owner = line.split_whitespace().nth(1).unwrap_or_default();
        if line.ends_with(" var/lib/driftless/") {
            assert_eq!(owner, "65532/65532", "{line}");
        } else {
            assert_eq!(owner, "0/0", "{line}");
        }
    }
    for path in [
        "etc/ssl/certs/ca-certificates.crt",
        "usr/local/bin/helm",
        "tmp",
    ] {
        assert!(image.rootfs.join(path).exists(), "{path} in the image");
    }
}

#[test]
fn driftless_from_the_image_prints_the_crate_version() {
    let image = image();
    let binary = image.rootfs.join("usr/local/bin/driftless");
    assert_eq!(
        std::fs::read(&binary).expect("driftless in the image"),
        std::fs::read(&image.binary).expect("the built driftless"),
    );
    let out = succeed(Command::new(&binary).arg("--version"));
    assert_eq!(
        text(&out.stdout).trim(),
        format!("driftless {}", env!("CARGO_PKG_VERSION"))
    );
}

/// The image's loader, asked to find libraries only in the image.
fn image_loader(image: &Image) -> Command {
    let lib = image.rootfs.join(LIB_DIR);
    let mut cmd = Command::new(lib.join("ld-linux-x86-64.so.2"));
    cmd.arg("--inhibit-cache").arg("--library-path").arg(lib);
    cmd
}

#[test]
fn the_programs_driftless_runs_load_only_the_image_s_libraries() {
    let image = image();
    for program in [
        "usr/bin/git",
        "usr/lib/git-core/git-remote-http",
        "usr/bin/ssh",
        "usr/bin/ssh-keygen",
        "usr/bin/dash",
        "usr/local/bin/helm",
    ] {
        let path = image.rootfs.join(program);
        let out = succeed(image_loader(image).arg("--list").arg(&path));
        let listing = text(&out.stdout);
        for line in listing.lines().filter(|l| l.contains("=>")) {
            let resolved = line.split("=>").nth(1).unwrap_or_default().trim();
            assert!(
                resolved.starts_with(&*image.rootfs.to_string_lossy()),
                "{program} loads {resolved}, which the image lacks"
            );
        }
    }
    let git = succeed(
        image_loader(image)
            .arg(image.rootfs.join("usr/bin/git"))
            .arg("--version"),
    );
    assert!(text(&git.stdout).starts_with("git version "), "{git:?}");
    let ssh = succeed(
        image_loader(image)
            .arg(image.rootfs.join("usr/bin/ssh"))
            .arg("-V"),
    );
    assert!(text(&ssh.stderr).starts_with("OpenSSH"), "{ssh:?}");
}

#[test]
fn as_its_user_in_a_chroot_the_image_runs_git_helm_and_driftless() {
    let image = image();
    let uid = text(&succeed(Command::new("id").arg("-u")).stdout);
    if uid.trim() != "0" {
        eprintln!("skipped: chroot needs root (the loader test above runs without)");
        return;
    }
    // A container runtime mounts /dev; git and ssh open /dev/null.
    let dev = image.rootfs.join("dev");
    std::fs::create_dir_all(&dev).expect("create dev");
    succeed(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(dev.join("null"))
            .args(["c", "1", "3"]),
    );
    // The child's PATH (the image's) is where Command looks, so name chroot in full.
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("chroot (coreutils)");
    let config = config(image);
    let script = "cd && git init --bare --quiet repo && git -C repo rev-parse --is-bare-repository \
                  && helm version --short && driftless --version && ssh -V";
    let out = succeed(
        Command::new(chroot)
            .arg(format!("--userspec={USER}"))
            .arg(&image.rootfs)
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .envs(
                config["config"]["Env"]
                    .as_array()
                    .expect("Env")
                    .iter()
                    .map(|e| {
                        let (k, v) = e.as_str().expect("KEY=VALUE").split_once('=').expect("=");
                        (k.to_owned(), v.to_owned())
                    }),
            ),
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("true\n"), "{stdout}");
    assert!(
        stdout.contains(&format!("driftless {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(
        image.rootfs.join("var/lib/driftless/repo/HEAD").exists(),
        "git wrote into the user's home"
    );
}

#[test]
fn two_builds_of_the_same_binary_give_the_same_digest() {
    let image = image();
    let again = image.work.join("again");
    let digest = run_script(&image.binary, &again);
    assert_eq!(digest, image.digest);
    let first = std::fs::read(&image.archive).expect("first archive");
    let second = std::fs::read(image.work.join("again.tar")).expect("second archive");
    assert!(first == second, "the archives are byte for byte the same");
    std::fs::remove_dir_all(&again).expect("remove the second layout");
    std::fs::remove_file(image.work.join("again.tar")).expect("remove the second archive");
}
