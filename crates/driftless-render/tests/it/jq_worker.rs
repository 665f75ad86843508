//! jq path expressions in the render worker: answers as evaluated here, and
//! expressions that recurse without end, spin or ask for gigabytes end in an
//! error naming the bound, within the bound, while this process goes on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use driftless_api::jq::{JqRunner, evaluate_here};
use driftless_render::{JqWorker, RenderWorker};
use serde_json::json;

fn jq() -> JqWorker {
    JqWorker::new(RenderWorker {
        program: PathBuf::from(env!("CARGO_BIN_EXE_driftless-render-worker")),
        args: Vec::new(),
    })
    .with_bounds(128 << 20, Duration::from_secs(3))
}

#[test]
fn the_worker_answers_as_an_evaluation_here_does() {
    let deployment = json!({
        "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "app", "image": "a"},
            {"name": "sidecar", "image": "b"},
        ]}}}
    });
    let config_map = json!({"data": {"k": "v"}});
    let expressions = [
        ".spec.replicas",
        ".spec.template.spec.containers[] | select(.name == \"sidecar\") | .image",
        ".data[]",
    ];
    let documents = [&deployment, &config_map];
    let answers = jq().run(&expressions, &documents).expect("answers");
    assert_eq!(
        answers,
        evaluate_here(&expressions, &documents).expect("here")
    );
    assert_eq!(
        answers[0][0],
        Some(vec![vec!["spec".to_owned(), "replicas".to_owned()]])
    );
    assert_eq!(
        answers[1][0].as_ref().expect("paths")[0].join("."),
        "spec.template.spec.containers.1.image"
    );
    // `.data[]` fails on the Deployment (null), and yields the key on the ConfigMap.
    assert_eq!(
        answers[2][1],
        Some(vec![vec!["data".to_owned(), "k".to_owned()]])
    );
    let err = jq().run(&["[[["], &documents).expect_err("does not parse");
    assert!(err.contains("does not parse as jq"), "{err}");
}

#[test]
fn runaway_expressions_end_at_their_bound() {
    let object = json!({"spec": {"replicas": 1}});
    let cases = [
        ("def f: f; f", ["past", "stack"].as_slice()),
        ("repeat(.) | select(false)", ["past"].as_slice()),
        (
            ".spec | select(reduce range(64) as $i (\"ab\"; . + .) | length > 0)",
            ["memory"].as_slice(),
        ),
        (
            ".spec | select(def f: 1 + f; f)",
            ["stack", "memory", "past"].as_slice(),
        ),
    ];
    for (expression, words) in cases {
        let start = Instant::now();
        let err = jq().run(&[expression], &[&object]).expect_err(expression);
        let took = start.elapsed();
        eprintln!("{expression}: {err} (after {took:?})");
        assert!(words.iter().any(|w| err.contains(w)), "{expression}: {err}");
        assert!(took < Duration::from_secs(10), "{expression} took {took:?}");
    }
    // And the next evaluation runs as usual.
    let answers = jq().run(&[".spec.replicas"], &[&object]).expect("answers");
    assert_eq!(answers[0][0].as_ref().map(Vec::len), Some(1));
}
