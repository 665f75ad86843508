//! Chat services: each one's webhook payload, with the event's title, what
//! happened, the facts (App, cluster, revision, author, drift) and the error.

use serde_json::{Value, json};

use super::Request;
use crate::event::{ERROR_EXCERPT, Event, excerpt};
use crate::target::Target;

/// Colour of an event: red for errors, green for recoveries and syncs, grey else.
fn colour(event: &Event) -> u32 {
    use driftless_api::EventKind::*;
    match event.kind {
        k if k.is_error() => 0xD9_30_25,
        SyncSucceeded | HealthRecovered | Resumed => 0x1E_8E_3E,
        _ => 0x5F_63_68,
    }
}

/// The word that says it when colour cannot: chat clients without colour, screen readers.
fn marker(event: &Event) -> &'static str {
    if event.kind.is_error() {
        "[error]"
    } else {
        "[info]"
    }
}

/// Slack incoming webhook: Block Kit with a plain-text fallback.
pub(super) fn slack(event: &Event, channel: Option<&str>) -> Value {
    let fields: Vec<Value> = event
        .facts()
        .into_iter()
        .take(10)
        .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", excerpt(&value, 1900))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": excerpt(&event.title(), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{} {}", marker(event), excerpt(&event.message, 2900))}, "fields": fields}),
    ];
    if let Some(error) = &event.error {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", excerpt(error, 2800))}}));
    }
    if let Some(url) = &event.url {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("<{url}|Open {} in driftless>", event.app)}}));
    }
    let mut body = json!({"text": format!("{} {}: {}", marker(event), event.title(), event.message), "blocks": blocks});
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    body
}

/// Mattermost incoming webhook: Markdown text.
pub(super) fn mattermost(event: &Event, channel: Option<&str>) -> Value {
    let mut text = format!(
        "#### {} {}\n{}\n",
        marker(event),
        event.title(),
        event.message
    );
    for (label, value) in event.facts() {
        text.push_str(&format!("- **{label}**: {value}\n"));
    }
    if let Some(error) = &event.error {
        text.push_str(&format!("```\n{}\n```\n", excerpt(error, ERROR_EXCERPT)));
    }
    if let Some(url) = &event.url {
        text.push_str(&format!("[Open {} in driftless]({url})\n", event.app));
    }
    let mut body = json!({"username": "driftless", "text": text});
    if let Some(channel) = channel {
        body["channel"] = json!(channel);
    }
    body
}

/// Discord webhook: one embed.
pub(super) fn discord(event: &Event) -> Value {
    let fields: Vec<Value> = event
        .facts()
        .into_iter()
        .map(
            |(label, value)| json!({"name": label, "value": excerpt(&value, 1024), "inline": true}),
        )
        .collect();
    let mut description = format!("{} {}", marker(event), event.message);
    if let Some(error) = &event.error {
        description.push_str(&format!("\n```\n{}\n```", excerpt(error, ERROR_EXCERPT)));
    }
    let mut embed = json!({
        "title": excerpt(&event.title(), 256),
        "description": excerpt(&description, 4096),
        "color": colour(event),
        "fields": fields,
        "timestamp": event.time.to_string(),
    });
    if let Some(url) = &event.url {
        embed["url"] = json!(url);
    }
    json!({"username": "driftless", "embeds": [embed]})
}

/// Google Chat space webhook: a text message in its own markup.
pub(super) fn google_chat(event: &Event) -> Value {
    let mut text = format!("*{} {}*\n{}", marker(event), event.title(), event.message);
    for (label, value) in event.facts() {
        text.push_str(&format!("\n*{label}:* {value}"));
    }
    if let Some(error) = &event.error {
        text.push_str(&format!("\n```{}```", excerpt(error, ERROR_EXCERPT)));
    }
    if let Some(url) = &event.url {
        text.push_str(&format!("\n<{url}|Open {} in driftless>", event.app));
    }
    json!({"text": text})
}

/// Microsoft Teams workflow webhook: a message with one Adaptive Card.
pub(super) fn teams(event: &Event) -> Value {
    let facts: Vec<Value> = event
        .facts()
        .into_iter()
        .map(|(label, value)| json!({"title": label, "value": value}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": event.title(), "weight": "Bolder", "size": "Medium", "wrap": true,
               "color": if event.kind.is_error() { "Attention" } else { "Good" }}),
        json!({"type": "TextBlock", "text": format!("{} {}", marker(event), event.message), "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if let Some(error) = &event.error {
        body.push(json!({"type": "TextBlock", "text": excerpt(error, ERROR_EXCERPT), "fontType": "Monospace", "wrap": true}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if let Some(url) = &event.url {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": format!("Open {}", event.app), "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }]
    })
}

/// Telegram bot API `sendMessage`, in its HTML parse mode.
pub(super) fn telegram(target: &Target, event: &Event) -> Request {
    let mut text = format!(
        "<b>{} {}</b>\n{}",
        marker(event),
        html(&event.title()),
        html(&event.message)
    );
    for (label, value) in event.facts() {
        text.push_str(&format!("\n<b>{label}:</b> {}", html(&value)));
    }
    if let Some(error) = &event.error {
        text.push_str(&format!(
            "\n<pre>{}</pre>",
            html(&excerpt(error, ERROR_EXCERPT))
        ));
    }
    if let Some(url) = &event.url {
        text.push_str(&format!(
            "\n<a href=\"{}\">Open {} in driftless</a>",
            html(url),
            html(&event.app)
        ));
    }
    let body = json!({
        "chat_id": target.spec.channel.clone().unwrap_or_default(),
        "text": text,
        "parse_mode": "HTML",
        "disable_web_page_preview": true,
    });
    let token = target.token.as_ref().map_or("", |t| t.expose());
    Request {
        url: format!("{}/bot{token}/sendMessage", target.url.expose()),
        headers: Vec::new(),
        body: serde_json::to_vec(&body).expect("a JSON value always serialises"),
    }
}

/// Escapes what Telegram's HTML mode reads as markup.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
