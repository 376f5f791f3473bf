//! Numerical guards end to end, with the toy loss `nan_after`: a NaN loss
//! names the first op whose output went non-finite, its component and scope,
//! the epoch and step; a finite loss with an infinite gradient names the op
//! whose backward produced it; `clip_grad_norm` is validated.

use causalrec_e2e::{run_recipe, text};

fn nan_run(name: &str, mode: &str) -> String {
    let (o, out) = run_recipe(
        name,
        &format!(
            r#"let d = dataset("bundled");
               train(d, backbone("mf", #{{dim: 8}}), estimator("naive"), #{{epochs: 3, batch_size: 1024, lr: 0.01, loss: loss("nan_after", #{{steps: 15, mode: "{mode}"}})}});"#
        ),
        &[],
    );
    assert!(!o.status.success());
    assert!(out
        .join("checkpoints/mf-naive-1-last.safetensors")
        .is_file());
    text(&o).1
}

#[test]
fn a_nan_loss_names_the_op_component_and_step() {
    let err = nan_run("nan_log", "log");
    // 15 finite steps: epoch 1 has 10 batches, the 16th call is epoch 2, step 6.
    assert!(
        err.contains("run 'mf-naive-1': the loss became NaN at epoch 2, step 6: the first non-finite value is the output of op LOG")
            && err.contains("in loss 'nan_after' (plugin toy), scope estimator/loss"),
        "{err}"
    );
    assert!(
        err.contains("the last finite checkpoint is kept at"),
        "{err}"
    );
}

#[test]
fn an_infinite_gradient_names_the_op_whose_backward_made_it() {
    let err = nan_run("nan_grad", "grad");
    assert!(
        err.contains("the gradient of parameter 'main/bias' became non-finite at epoch 2, step 6: the loss is finite"),
        "{err}"
    );
    assert!(
        err.contains("the gradient first went non-finite in the backward of op SQRT")
            && err.contains("its input is the output of op SUB")
            && err.contains("in loss 'nan_after' (plugin toy), scope estimator/loss"),
        "{err}"
    );
}

#[test]
fn clip_grad_norm_trains_and_rejects_a_negative_limit() {
    let body = |clip: &str| {
        format!(
            r#"let d = dataset("bundled");
               let r = train(d, backbone("mf", #{{dim: 8}}), estimator("naive"), #{{epochs: 1, lr: 0.01, clip_grad_norm: {clip}}});
               print(`CHECK ndcg ${{evaluate(r, "all_ranking")["ndcg@10"]}}`);"#
        )
    };
    let (o, _) = run_recipe("clip_ok", &body("0.5"), &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    let (o, _) = run_recipe("clip_bad", &body("-1.0"), &[]);
    let err = text(&o).1;
    assert!(!o.status.success());
    assert!(
        err.contains("clip_grad_norm must be a number >= 0"),
        "{err}"
    );
}
