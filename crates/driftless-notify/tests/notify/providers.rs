//! Each provider's request, checked against the format its service documents.

use driftless_notify::{CommitState, CommitUpdate, Delivery};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::support::{Recorder, SHA, WAIT, dispatcher, failed_sync, reverted_drift, target};

fn event(e: driftless_notify::Event) -> Delivery {
    Delivery::Event(Box::new(e))
}

#[tokio::test]
async fn slack_gets_block_kit_with_a_text_fallback_and_the_channel() {
    let server = Recorder::start();
    let url = server.url("/services/T000/B000/XXXX");
    let d = dispatcher(target(
        "chat",
        json!({"type": "slack", "secretEnv": "U", "channel": "#deploys"}),
        Some(&url),
    ));
    d.send(&event(failed_sync()));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/services/T000/B000/XXXX")
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body = &seen.json();
    assert_eq!(body["channel"], "#deploys");
    assert_eq!(
        body["text"],
        "[error] web-prod: SyncFailed at 0123456789ab: apply failed at revision 0123456789ab"
    );
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
    let fields: Vec<&str> = body["blocks"][1]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        fields,
        [
            "*App*\nweb-prod",
            "*Cluster*\ndefault/web",
            "*Revision*\n0123456789ab Raise replicas to 3",
            "*Author*\nAda Lovelace <ada@example.com>"
        ]
    );
    assert_eq!(
        body["blocks"][2]["text"]["text"],
        "```Deployment/web/web: spec.replicas: Invalid value: -1```"
    );
    assert_eq!(
        body["blocks"][3]["text"]["text"],
        "<https://driftless.example.com/apps/web-prod|Open web-prod in driftless>"
    );
}

#[tokio::test]
async fn mattermost_gets_markdown_text() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "mm",
        json!({"type": "mattermost", "address": server.url("/hooks/abc"), "events": ["DriftReverted"]}),
        None,
    ));
    d.send(&event(reverted_drift()));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(seen.path, "/hooks/abc");
    let body = seen.json();
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with("#### [info] web-prod: DriftReverted at 0123456789ab\n"),
        "{text}"
    );
    assert!(
        text.contains("- **Fields**: spec.replicas\n- **Changed by**: kubectl-edit\n"),
        "{text}"
    );
    assert_eq!(seen.json()["username"], "driftless");
    assert!(seen.json().get("channel").is_none());
}

#[tokio::test]
async fn discord_gets_one_embed_with_fields_colour_and_link() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "dc",
        json!({"type": "discord", "address": server.url("/api/webhooks/1/tok")}),
        None,
    ));
    d.send(&event(failed_sync()));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(seen.path, "/api/webhooks/1/tok");
    let embed = &seen.json()["embeds"][0];
    assert_eq!(embed["title"], "web-prod: SyncFailed at 0123456789ab");
    assert_eq!(embed["color"], 0xD93025);
    assert_eq!(embed["url"], "https://driftless.example.com/apps/web-prod");
    assert_eq!(
        embed["fields"][0],
        json!({"name": "App", "value": "web-prod", "inline": true})
    );
    assert_eq!(embed["timestamp"], "2026-05-28T20:26:40Z");
    assert!(
        embed["description"]
            .as_str()
            .expect("description")
            .contains("```\nDeployment/web/web: spec.replicas: Invalid value: -1\n```")
    );
}

#[tokio::test]
async fn google_chat_gets_a_text_message_in_its_markup() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "gc",
        json!({"type": "googlechat", "address": server.url("/v1/spaces/AAA/messages?key=k&token=t")}),
        None,
    ));
    d.send(&event(failed_sync()));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(seen.path, "/v1/spaces/AAA/messages?key=k&token=t");
    let body = seen.json();
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with("*[error] web-prod: SyncFailed at 0123456789ab*\n"),
        "{text}"
    );
    assert!(
        text.contains("\n*Author:* Ada Lovelace <ada@example.com>"),
        "{text}"
    );
    assert!(
        text.ends_with("<https://driftless.example.com/apps/web-prod|Open web-prod in driftless>"),
        "{text}"
    );
    assert_eq!(seen.json().as_object().expect("object").len(), 1);
}

#[tokio::test]
async fn teams_gets_an_adaptive_card_in_a_message() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "teams",
        json!({"type": "msteams", "address": server.url("/workflows/run")}),
        None,
    ));
    d.send(&event(failed_sync()));
    let seen = &server.wait_for(1, WAIT).await[0];
    let body = &seen.json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(
        card["body"][0]["text"],
        "web-prod: SyncFailed at 0123456789ab"
    );
    assert_eq!(card["body"][2]["type"], "FactSet");
    assert_eq!(
        card["body"][2]["facts"][1],
        json!({"title": "Cluster", "value": "default/web"})
    );
    assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
}

#[tokio::test]
async fn telegram_gets_send_message_with_the_token_in_the_path_and_html_escaped() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "tg",
        json!({"type": "telegram", "address": server.url(""), "secretEnv": "T", "channel": "-100123"}),
        Some("123:ABC"),
    ));
    let mut e = failed_sync();
    e.error = Some("value <nil> & more".into());
    d.send(&event(e));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(seen.path, "/bot123:ABC/sendMessage");
    assert_eq!(seen.json()["chat_id"], "-100123");
    assert_eq!(seen.json()["parse_mode"], "HTML");
    let body = seen.json();
    let text = body["text"].as_str().expect("text");
    assert!(
        text.starts_with("<b>[error] web-prod: SyncFailed at 0123456789ab</b>\n"),
        "{text}"
    );
    assert!(
        text.contains("<pre>value &lt;nil&gt; &amp; more</pre>"),
        "{text}"
    );
}

#[tokio::test]
async fn the_generic_webhook_sends_the_documented_json_signed_with_hmac() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "hook",
        json!({"type": "webhook", "address": server.url("/driftless"), "secretEnv": "K"}),
        Some("s3cret"),
    ));
    d.send(&event(failed_sync()));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(seen.header("x-driftless-event"), Some("SyncFailed"));
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").expect("key");
    mac.update(&seen.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(seen.header("x-driftless-signature"), Some(want.as_str()));
    assert_eq!(
        seen.json(),
        json!({
            "kind": "SyncFailed", "app": "web-prod", "cluster": "default", "namespace": "web",
            "revision": {"sha": SHA, "subject": "Raise replicas to 3", "author": "Ada Lovelace <ada@example.com>"},
            "message": "apply failed at revision 0123456789ab",
            "error": "Deployment/web/web: spec.replicas: Invalid value: -1",
            "url": "https://driftless.example.com/apps/web-prod",
            "time": "2026-05-28T20:26:40Z"
        })
    );
}

fn commit(state: CommitState) -> Delivery {
    Delivery::Commit(Box::new(CommitUpdate {
        app: "web-prod".into(),
        sha: SHA.into(),
        state,
        description: "applied and healthy".into(),
        url: Some("https://driftless.example.com/apps/web-prod".into()),
        source_url: "https://github.com/acme/platform.git".into(),
    }))
}

#[tokio::test]
async fn github_gets_a_status_on_the_commit_with_the_app_context() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "gh",
        json!({"type": "github", "address": server.url(""), "secretEnv": "T"}),
        Some("ghp_token"),
    ));
    d.send(&commit(CommitState::Pending));
    d.send(&commit(CommitState::Pending));
    d.send(&commit(CommitState::Success));
    let seen = server.wait_for(2, WAIT).await;
    assert_eq!(seen[0].path, format!("/repos/acme/platform/statuses/{SHA}"));
    assert_eq!(seen[0].header("authorization"), Some("Bearer ghp_token"));
    assert_eq!(
        seen[0].header("accept"),
        Some("application/vnd.github+json")
    );
    assert_eq!(
        seen[0].json(),
        json!({"state": "pending", "context": "driftless/web-prod", "description": "applied and healthy", "target_url": "https://driftless.example.com/apps/web-prod"})
    );
    assert_eq!(seen[1].json()["state"], "success");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        server.requests().len(),
        2,
        "the same state twice is set once"
    );
}

#[tokio::test]
async fn gitlab_gets_a_status_on_the_encoded_project() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "gl",
        json!({"type": "gitlab", "address": server.url(""), "secretEnv": "T", "repository": "group/sub/app"}),
        Some("glpat"),
    ));
    d.send(&commit(CommitState::Failure));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(
        seen.path,
        format!("/api/v4/projects/group%2Fsub%2Fapp/statuses/{SHA}")
    );
    assert_eq!(seen.header("private-token"), Some("glpat"));
    assert_eq!(seen.json()["state"], "failed");
    assert_eq!(seen.json()["name"], "driftless/web-prod");
}

#[tokio::test]
async fn gitea_gets_a_status_with_its_token_header() {
    let server = Recorder::start();
    let d = dispatcher(target(
        "gt",
        json!({"type": "gitea", "address": server.url(""), "secretEnv": "T"}),
        Some("gitea-token"),
    ));
    d.send(&commit(CommitState::Failure));
    let seen = &server.wait_for(1, WAIT).await[0];
    assert_eq!(
        seen.path,
        format!("/api/v1/repos/acme/platform/statuses/{SHA}")
    );
    assert_eq!(seen.header("authorization"), Some("token gitea-token"));
    assert_eq!(seen.json()["state"], "failure");
    assert_eq!(seen.json()["context"], "driftless/web-prod");
}

#[tokio::test]
async fn message_types_ignore_commits_and_commit_types_ignore_events() {
    let chat = Recorder::start();
    let git = Recorder::start();
    let d = driftless_notify::Dispatcher::new(super::support::quick());
    d.configure(vec![
        Ok(target(
            "chat",
            json!({"type": "slack", "address": chat.url("/x"), "events": ["SyncFailed"]}),
            None,
        )),
        Ok(target(
            "gh",
            json!({"type": "github", "address": git.url(""), "secretEnv": "T"}),
            Some("t"),
        )),
    ]);
    d.send(&commit(CommitState::Pending));
    d.send(&event(failed_sync()));
    chat.wait_for(1, WAIT).await;
    git.wait_for(1, WAIT).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        chat.requests()[0].json()["text"]
            .as_str()
            .map(|t| t.contains("SyncFailed")),
        Some(true)
    );
    assert_eq!(git.requests()[0].json()["state"], "pending");
    assert_eq!((chat.requests().len(), git.requests().len()), (1, 1));
}
