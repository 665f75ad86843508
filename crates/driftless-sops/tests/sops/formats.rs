//! Every format sops stores, with the structures and options it honours.

use super::support::{Fixture, assert_same_as_sops};

const YAML: &str = r#"# a head comment
apiVersion: v1
kind: Secret
metadata:
  name: db # an inline comment
  labels:
    quoted: "true"
stringData:
  password: hunter2
  multi: |
    line one
    line two
  n: 42
  f: 1.5
  b: true
  empty: ""
  date: 2024-01-02
list:
  - one
  # a comment in a list
  - 2
  - nested: x
    other: [1, 2]
  - |-
    block
    in a list
spaces: "  leading"
colon: "a: b"
unicode: "grüße ✓"
long: "word word word word word word word word word word word word word word word word word word word word word word word"
long_quoted: "word: word word word word word word word word word word word word word word word word word word word word word word"
long_escaped: "tab\tword word word word word word word word word word word word word word word word word word word word word  two  spaces"
lead_in_block: "a\n b\n"
# a trailing comment
"#;

#[test]
fn yaml_with_nested_maps_lists_comments_and_two_recipients() {
    let fixture = Fixture::new();
    let first = fixture.age_key("first");
    let second = fixture.age_key("second");
    let recipients = format!("{},{}", first.recipient, second.recipient);
    let file = fixture.encrypt("secret.yaml", YAML.as_bytes(), &["--age", &recipients]);
    assert_same_as_sops(&fixture, &file, &[&second.file]);
    assert_same_as_sops(&fixture, &file, &[&first.file]);
}

#[test]
fn yaml_with_several_documents() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let text = "a:\n  b: 1 # after b\n  # trailing in a\nc: x\n# last\n---\nd: 2\ne: [x, y]\n";
    let file = fixture.encrypt("docs.yaml", text.as_bytes(), &["--age", &key.recipient]);
    assert_same_as_sops(&fixture, &file, &[&key.file]);
}

#[test]
fn json_with_nested_objects_arrays_and_numbers() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let text = r#"{"b": 1, "a": {"x": [1, 2.5, "s", true, null], "e": {}, "l": []}, "h": "<&> \"q\" \n\t", "f": 1e21, "g": 0.000001, "big": 12345678901234}"#;
    let file = fixture.encrypt("secret.json", text.as_bytes(), &["--age", &key.recipient]);
    assert_same_as_sops(&fixture, &file, &[&key.file]);
}

#[test]
fn dotenv_with_comments_and_escaped_newlines() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let text = "# database\nDB_USER=admin\nDB_PASS=p@ss=word\nMULTI=one\\ntwo\nEMPTY=\n";
    let file = fixture.encrypt("secret.env", text.as_bytes(), &["--age", &key.recipient]);
    assert_same_as_sops(&fixture, &file, &[&key.file]);
}

#[test]
fn binary_files_round_trip_their_bytes() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let bytes: Vec<u8> = (0u8..=255).chain(b"tail\n".iter().copied()).collect();
    let file = fixture.encrypt("blob.bin", &bytes, &["--age", &key.recipient]);
    assert_same_as_sops(&fixture, &file, &[&key.file]);
    let text = fixture.encrypt(
        "notes.txt",
        b"plain text\nsecond line\n",
        &["--age", &key.recipient],
    );
    assert_same_as_sops(&fixture, &text, &[&key.file]);
}

#[test]
fn encrypted_regex_leaves_other_values_in_clear() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let args = [
        "--age",
        &key.recipient,
        "--encrypted-regex",
        "^(data|stringData)$",
    ];
    let file = fixture.encrypt("regex.yaml", YAML.as_bytes(), &args);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("kind: Secret"), "{text}");
    assert_same_as_sops(&fixture, &file, &[&key.file]);
}

#[test]
fn unencrypted_suffix_and_regex_and_encrypted_suffix() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let text = "user_plain: admin\npass: secret\nnested:\n  id_plain: 7\n  token: abc\n";
    let cases: [&[&str]; 3] = [
        &["--unencrypted-suffix", "_plain"],
        &["--unencrypted-regex", "^id_"],
        &["--encrypted-suffix", "_plain"],
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut args = vec!["--age", key.recipient.as_str()];
        args.extend_from_slice(extra);
        let file = fixture.encrypt(&format!("rules{i}.yaml"), text.as_bytes(), &args);
        assert_same_as_sops(&fixture, &file, &[&key.file]);
    }
}

#[test]
fn mac_only_encrypted() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let config = format!(
        "creation_rules:\n  - age: {}\n    encrypted_regex: ^pass$\n    mac_only_encrypted: true\n",
        key.recipient
    );
    std::fs::write(fixture.path(".sops.yaml"), config).expect("write .sops.yaml");
    let file = fixture.encrypt("maconly.yaml", b"user: admin\npass: secret\n", &[]);
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.contains("mac_only_encrypted: true"), "{text}");
    assert_same_as_sops(&fixture, &file, &[&key.file]);
}

#[test]
fn key_groups_with_a_shamir_threshold() {
    let fixture = Fixture::new();
    let keys: Vec<_> = ["a", "b", "c"].iter().map(|n| fixture.age_key(n)).collect();
    let config = format!(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
        keys[0].recipient, keys[1].recipient, keys[2].recipient
    );
    std::fs::write(fixture.path(".sops.yaml"), config).expect("write .sops.yaml");
    let file = fixture.encrypt("groups.yaml", b"token: abc\nlist: [1, 2]\n", &[]);
    assert_same_as_sops(&fixture, &file, &[&keys[0].file, &keys[2].file]);
    assert_same_as_sops(&fixture, &file, &[&keys[1].file, &keys[2].file]);
    let err = super::support::decrypt(&file, &super::support::keys(&[&keys[1].file]))
        .expect_err("one group of three is below the threshold");
    let message = err.to_string();
    assert!(
        message.contains("1 of 3 key groups decrypted, 2 needed"),
        "{message}"
    );
    assert!(message.contains(&file.display().to_string()), "{message}");
}

#[test]
fn openpgp_keys_ecc_and_rsa_beside_age() {
    let fixture = Fixture::new();
    let ecc = fixture.pgp_key("ecc", "future-default");
    let rsa = fixture.pgp_key("rsa", "rsa2048");
    let age = fixture.age_key("age");
    let pgp = format!("{},{}", ecc.fingerprint, rsa.fingerprint);
    let args = ["--pgp", &pgp, "--age", &age.recipient];
    let yaml = fixture.encrypt("pgp.yaml", YAML.as_bytes(), &args);
    let json = fixture.encrypt("pgp.json", br#"{"a": {"b": [1, "two"]}}"#, &args);
    let env = fixture.encrypt("pgp.env", b"# c\nA=1\n", &args);
    for file in [&yaml, &json, &env] {
        assert_same_as_sops(&fixture, file, &[&ecc.secret_file]);
        assert_same_as_sops(&fixture, file, &[&rsa.secret_file]);
    }
}

#[test]
fn key_groups_mixing_openpgp_and_age() {
    let fixture = Fixture::new();
    let pgp = fixture.pgp_key("group", "future-default");
    let age = fixture.age_key("age");
    let config = format!(
        "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - pgp: [{}]\n      - age: [{}]\n",
        pgp.fingerprint, age.recipient
    );
    std::fs::write(fixture.path(".sops.yaml"), config).expect("write .sops.yaml");
    let file = fixture.encrypt("mixed.yaml", b"token: abc\n", &[]);
    assert_same_as_sops(&fixture, &file, &[&pgp.secret_file, &age.file]);
}

/// Comments that decide, under a comment regex, which values sops encrypts:
/// in maps and lists, nested, inline, several in a row, at the top level.
const COMMENTED: &str = r#"# top comment
plain: hello
# sops:enc
password: s3cret
other: visible
inline: value # sops:enc
nested:
  # sops:enc
  # a second line, encrypted under the first
  token: abc
  keep: 1
  # sops:noenc
  deep:
    a: x
    b: 2
  after: y
# sops:enc
whole:
  one: 1
  two: [a, b]
list:
  # sops:enc
  - one
  - two
  # sops:noenc
  - three
# trailing
"#;

/// The two comment rules (their `.sops.yaml` names, the `encrypt` command
/// has no flags for them) with the regex each test file uses.
const COMMENT_RULES: [(&str, &str); 2] = [
    ("encrypted_comment_regex", "sops:enc"),
    ("unencrypted_comment_regex", "sops:noenc"),
];

/// Makes `rule: regex` the fixture's creation rule for `recipient`.
fn comment_rule(fixture: &Fixture, recipient: &str, rule: &str, regex: &str) {
    let config = format!("creation_rules:\n  - age: {recipient}\n    {rule}: {regex}\n");
    std::fs::write(fixture.path(".sops.yaml"), config).expect("write .sops.yaml");
}

#[test]
fn encrypted_and_unencrypted_comment_regexes_in_yaml() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    for (i, (rule, regex)) in COMMENT_RULES.iter().enumerate() {
        comment_rule(&fixture, &key.recipient, rule, regex);
        let file = fixture.encrypt(&format!("comments{i}.yaml"), COMMENTED.as_bytes(), &[]);
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains(&format!("{rule}: {regex}")), "{text}");
        // Some values stay in clear, others are encrypted.
        assert!(text.contains("ENC[AES256_GCM"), "{text}");
        assert!(
            text.contains(if i == 0 { "other: visible" } else { "a: x" }),
            "{text}"
        );
        assert_same_as_sops(&fixture, &file, &[&key.file]);
    }
}

#[test]
fn comment_regexes_in_dotenv_and_json() {
    let fixture = Fixture::new();
    let key = fixture.age_key("key");
    let env = "# sops:enc\nPASS=secret\nUSER=admin\n# note\n# sops:noenc\nHOST=db\nPORT=5432\n";
    let json = r#"{"a": "x", "b": {"c": 1}}"#;
    for (i, (rule, regex)) in COMMENT_RULES.iter().enumerate() {
        comment_rule(&fixture, &key.recipient, rule, regex);
        let env = fixture.encrypt(&format!("comments{i}.env"), env.as_bytes(), &[]);
        let json = fixture.encrypt(&format!("comments{i}.json"), json.as_bytes(), &[]);
        for file in [&env, &json] {
            assert_same_as_sops(&fixture, file, &[&key.file]);
        }
    }
}
