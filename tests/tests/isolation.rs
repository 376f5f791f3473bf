//! Plugin isolation: a test plugin (`tests/toy-plugins`, a separate .so)
//! that panics inside a component call, or hands the host tensors of the
//! wrong shape, must stop the run with an error naming the plugin, the
//! component, the op and the shapes, never a crash of the host.

use causalrec_e2e::*;

/// Run `train(d, backbone("mf", #{dim: 8}), <estimator>, #{epochs: 1})`
/// (plus `after`) on the bundled data; the host's exit and stderr.
fn train_with(name: &str, estimator: &str, after: &str) -> (bool, String) {
    let body = format!(
        "let d = dataset(\"bundled\");\nlet r = train(d, backbone(\"mf\", #{{dim: 8}}), {estimator}, #{{epochs: 1, batch_size: 256}});\n{after}"
    );
    let (o, _) = run_recipe(name, &body, &[]);
    let (so, se) = text(&o);
    // A panic of the host itself exits with 101; a reported error with 1.
    assert_ne!(
        o.status.code(),
        Some(101),
        "the host itself panicked:\n{so}\n{se}"
    );
    (o.status.success(), se)
}

#[test]
fn a_plugin_panic_is_reported_with_plugin_and_component() {
    let (ok, err) = train_with("panic", "estimator(\"toy_panic\")", "");
    assert!(!ok);
    assert!(err.contains("panic.rhai:2:9"), "{err}");
    assert!(
        err.contains("estimator 'toy_panic' (plugin toy)")
            && err.contains("panicked in train_step: toy estimator exploded"),
        "{err}"
    );
}

#[test]
fn a_score_of_the_wrong_shape_names_the_loss_op_and_both_shapes() {
    // Training: the [B, 8] score meets the [B] labels in the loss.
    let (ok, err) = train_with(
        "wrong-score",
        "estimator(\"toy_wrong_shape\", #{mode: \"score\"})",
        "",
    );
    assert!(!ok);
    assert!(err.contains("wrong-score.rhai:2:9"), "{err}");
    assert!(
        err.contains("estimator 'toy_wrong_shape' (plugin toy)"),
        "{err}"
    );
    assert!(
        err.contains("loss 'bce' (plugin ctr): BCE_WITH_LOGITS: logits [512, 8]")
            && err.contains("labels [512]"),
        "{err}"
    );
}

#[test]
fn a_broadcast_of_mismatched_shapes_names_the_op_the_component_and_both_shapes() {
    let (ok, err) = train_with(
        "wrong-op",
        "estimator(\"toy_wrong_shape\", #{mode: \"op\"})",
        "",
    );
    assert!(!ok);
    assert!(
        err.contains("estimator 'toy_wrong_shape' (plugin toy)"),
        "{err}"
    );
    assert!(
        err.contains("MUL: shape mismatch in broadcast_mul, lhs: [512, 8], rhs: [9]"),
        "{err}"
    );
}
