//! Webhook receivers: real payload shapes, signatures computed here.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::TestServer;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/server/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn post(
    s: &TestServer,
    receiver: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = s
        .client
        .post(s.url(&format!("/hooks/{receiver}")))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    (status, resp.json().await.expect("json body"))
}

/// Posts `body` as GitHub event `event`, signed with the receiver's secret.
async fn github(s: &TestServer, event: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let sig = format!("sha256={}", hmac_hex(b"gh-secret", &body));
    let headers = [
        ("X-GitHub-Event", event.to_owned()),
        ("X-Hub-Signature-256", sig),
    ];
    post(s, "gh", &headers, body).await
}

#[tokio::test]
async fn github_push_with_valid_signature_triggers_the_matching_app() {
    let s = TestServer::start().await;
    let (status, reply) = github(&s, "push", fixture("github-push.json")).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["triggered"], 1);
    assert_eq!(reply["ref"], "refs/heads/main");
    s.settle().await;
    assert_eq!(
        s.runs.lock().expect("lock").as_slice(),
        [(
            "web".to_owned(),
            driftless_engine::store::SyncTrigger::Webhook
        )]
    );
    let pushes = s.pushes.lock().expect("lock");
    let urls = &pushes[0].1.repo_urls;
    assert!(
        urls.contains(&"github.com/acme/platform".to_owned()),
        "{urls:?}"
    );
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_triggers_nothing() {
    let s = TestServer::start().await;
    let body = fixture("github-push.json");
    let wrong = format!("sha256={}", hmac_hex(b"not-the-secret", &body));
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let right_for_other_body = format!("sha256={}", hmac_hex(b"gh-secret", &body));
    for (sig, payload) in [
        (Some(wrong), body.clone()),
        (Some(right_for_other_body), tampered),
        (Some("sha256=zz".into()), body.clone()),
        (None, body.clone()),
    ] {
        let mut headers = vec![("X-GitHub-Event", "push".to_owned())];
        if let Some(sig) = sig {
            headers.push(("X-Hub-Signature-256", sig));
        }
        let (status, reply) = post(&s, "gh", &headers, payload).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
        assert!(
            reply["error"]
                .as_str()
                .is_some_and(|e| e.contains("X-Hub-Signature-256")),
            "{reply}"
        );
    }
    let (status, _) = post(
        &s,
        "gl",
        &[
            ("X-Gitlab-Event", "Push Hook".into()),
            ("X-Gitlab-Token", "gl-tokem".into()),
        ],
        fixture("gitlab-tag-push.json"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.settle().await;
    assert!(s.pushes.lock().expect("lock").is_empty());
    assert!(s.runs.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn github_ping_and_other_events_are_acknowledged_without_work() {
    let s = TestServer::start().await;
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#.to_vec();
    let (status, reply) = github(&s, "ping", ping).await;
    assert_eq!(
        (status, reply["event"].as_str()),
        (StatusCode::OK, Some("ping"))
    );
    let (status, reply) = github(&s, "issues", fixture("github-issues.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["ignored"], true);
    assert!(s.pushes.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn gitlab_gitea_and_generic_pushes_parse_urls_and_refs() {
    let s = TestServer::start().await;
    let gl = fixture("gitlab-tag-push.json");
    let (status, reply) = post(
        &s,
        "gl",
        &[
            ("X-Gitlab-Event", "Tag Push Hook".into()),
            ("X-Gitlab-Token", "gl-token".into()),
        ],
        gl,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["ref"], "refs/tags/v1.4.0");

    let gt = fixture("gitea-push.json");
    let sig = hmac_hex(b"gt-secret", &gt);
    let (status, reply) = post(
        &s,
        "gt",
        &[("X-Gitea-Event", "push".into()), ("X-Gitea-Signature", sig)],
        gt.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, _) = post(
        &s,
        "gt",
        &[
            ("X-Gitea-Event", "push".into()),
            ("X-Gitea-Signature", hmac_hex(b"x", &gt)),
        ],
        gt,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let generic = fixture("generic-push.json");
    let sig = format!("sha256={}", hmac_hex(b"any-secret", &generic));
    let (status, reply) = post(&s, "any", &[("X-Signature", sig)], generic).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["triggered"], 0, "another repository");

    let pushes = s.pushes.lock().expect("lock");
    let by_receiver = |r: &str| {
        pushes
            .iter()
            .find(|p| p.0 == r)
            .map(|p| p.1.clone())
            .expect("push recorded")
    };
    assert!(by_receiver("gl").matches("ssh://git@gitlab.example.com/infra/platform"));
    let gitea = by_receiver("gt");
    assert_eq!(gitea.git_ref.as_deref(), Some("refs/heads/release"));
    assert!(gitea.matches("git@gitea.example.org:ops/apps.git"));
    assert!(gitea.matches("https://gitea.example.org/ops/apps/"));
    assert!(by_receiver("any").matches("HTTPS://git.example.com/org/platform"));
}

#[tokio::test]
async fn unknown_receiver_and_bad_json_are_rejected() {
    let s = TestServer::start().await;
    let (status, reply) = post(&s, "nope", &[], b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"], "receiver nope not found");
    let body = b"not json".to_vec();
    let sig = format!("sha256={}", hmac_hex(b"any-secret", &body));
    let (status, reply) = post(&s, "any", &[("X-Signature", sig)], body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
}
