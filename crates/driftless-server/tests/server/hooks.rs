//! Webhook receivers: real payload shapes, signatures computed here.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::TestServer;

pub(crate) fn fixture(name: &str) -> Vec<u8> {
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
pub(crate) async fn github(s: &TestServer, event: &str, body: Vec<u8>) -> (StatusCode, Value) {
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

/// Posts `body` as GitHub event `event` to `receiver` with delivery id `delivery`.
async fn github_delivery(
    s: &TestServer,
    receiver: &str,
    event: &str,
    delivery: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let sig = format!("sha256={}", hmac_hex(b"gh-secret", &body));
    let headers = [
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("X-Hub-Signature-256", sig),
    ];
    post(s, receiver, &headers, body).await
}

#[tokio::test]
async fn a_replayed_delivery_id_triggers_once() {
    let s = TestServer::start().await;
    let body = fixture("github-push.json");
    let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let (status, first) = github_delivery(&s, "gh", "push", id, body.clone()).await;
    assert_eq!((status, &first["triggered"]), (StatusCode::OK, &1.into()));
    let (status, replay) = github_delivery(&s, "gh", "push", id, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["ignored"], true, "{replay}");
    assert!(
        replay["reason"].as_str().is_some_and(|r| r.contains(id)),
        "{replay}"
    );
    let (_, other) = github_delivery(&s, "gh", "push", "another-delivery", body).await;
    assert_eq!(other["triggered"], 1, "{other}");
    assert_eq!(s.pushes.lock().expect("lock").len(), 2);

    // GitLab and Gitea name their delivery ids in their own headers.
    let gl = fixture("gitlab-tag-push.json");
    let gitlab = [
        ("X-Gitlab-Event", "Tag Push Hook".to_owned()),
        ("X-Gitlab-Token", "gl-token".to_owned()),
        (
            "X-Gitlab-Event-UUID",
            "13792a34-cac6-4fda-95a8-c58e00a3954e".to_owned(),
        ),
    ];
    let (_, first) = post(&s, "gl", &gitlab, gl.clone()).await;
    let (_, replay) = post(&s, "gl", &gitlab, gl).await;
    assert_eq!(
        (&first["ignored"], &replay["ignored"]),
        (&Value::Null, &true.into())
    );
    let gt = fixture("gitea-push.json");
    let gitea = [
        ("X-Gitea-Event", "push".to_owned()),
        ("X-Gitea-Signature", hmac_hex(b"gt-secret", &gt)),
        (
            "X-Gitea-Delivery",
            "3f0e2b67-1d8b-4c1f-9d0c-5c2a7f1d9e10".to_owned(),
        ),
    ];
    let (_, first) = post(&s, "gt", &gitea, gt.clone()).await;
    let (_, replay) = post(&s, "gt", &gitea, gt).await;
    assert_eq!(
        (&first["ignored"], &replay["ignored"]),
        (&Value::Null, &true.into())
    );
    assert_eq!(s.pushes.lock().expect("lock").len(), 4);
}

#[tokio::test]
async fn an_unsigned_replay_cannot_use_up_a_delivery_id() {
    let s = TestServer::start().await;
    let body = fixture("github-push.json");
    let id = "delivery-claimed-by-a-forger";
    let headers = [
        ("X-GitHub-Event", "push".to_owned()),
        ("X-GitHub-Delivery", id.to_owned()),
        (
            "X-Hub-Signature-256",
            format!("sha256={}", hmac_hex(b"wrong", &body)),
        ),
    ];
    let (status, _) = post(&s, "gh", &headers, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, reply) = github_delivery(&s, "gh", "push", id, body).await;
    assert_eq!(
        (status, &reply["triggered"]),
        (StatusCode::OK, &1.into()),
        "{reply}"
    );
}

#[tokio::test]
async fn receiver_events_decide_what_triggers() {
    let s = TestServer::start().await;
    let release = fixture("github-release.json");
    // The default receiver acts on pushes only: a release is acknowledged, nothing more.
    let (status, reply) = github(&s, "release", release.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply["ignored"], true, "{reply}");
    assert!(s.pushes.lock().expect("lock").is_empty());

    // `releases` lists release and ping: both trigger, and a push does not.
    let (status, reply) = github_delivery(&s, "releases", "release", "r-1", release).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(
        (&reply["event"], &reply["triggered"]),
        (&"release".into(), &1.into())
    );
    let ping = br#"{"zen":"Design for failure.","hook_id":7,
        "repository":{"clone_url":"https://github.com/acme/platform.git"}}"#
        .to_vec();
    let (_, reply) = github_delivery(&s, "releases", "ping", "r-2", ping).await;
    assert_eq!(reply["triggered"], 1, "{reply}");
    let push = fixture("github-push.json");
    let (_, reply) = github_delivery(&s, "releases", "push", "r-3", push).await;
    assert_eq!(reply["ignored"], true, "{reply}");
    s.settle().await;
    let pushes = s.pushes.lock().expect("lock");
    assert_eq!(pushes.len(), 2);
    assert!(pushes.iter().all(|(receiver, _)| receiver == "releases"));
}

#[tokio::test]
async fn gitlab_events_match_by_header_or_short_name() {
    use driftless_server::webhook::{Provider, acts_on};
    assert!(acts_on(Provider::Gitlab, &[], "Tag Push Hook"));
    assert!(!acts_on(Provider::Gitlab, &[], "Merge Request Hook"));
    let listed = ["tag_push".to_owned()];
    assert!(acts_on(Provider::Gitlab, &listed, "Tag Push Hook"));
    assert!(!acts_on(Provider::Gitlab, &listed, "Push Hook"));
    assert!(acts_on(
        Provider::Github,
        &["Release".to_owned()],
        "release"
    ));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_in_json() {
    let limits = driftless_api::HttpLimits {
        max_body_bytes: 2048,
        ..Default::default()
    };
    let s = TestServer::start_with(limits).await;
    let body = vec![b' '; 4096];
    let (status, reply) = github(&s, "push", body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("2048 bytes") && e.contains("maxBodyBytes")),
        "{reply}"
    );

    // Without a Content-Length the limit applies while reading.
    let chunk = "x".repeat(3000);
    let request = format!(
        "POST /hooks/gh HTTP/1.1\r\nHost: test\r\nX-GitHub-Event: push\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let answer = crate::limits::exchange(s.addr(), request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#"{"error":"request body is larger"#),
        "{answer}"
    );
}
