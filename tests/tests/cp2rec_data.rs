//! CP2Rec's data protocol end to end on the Open Bandit sample
//! (../shared/data/obd; skipped when absent): `dataset("obd", #{ label,
//! split: "given", valid_share: 0.2, context: ["position"], item_stats })`
//! trains FM and DCN pointwise, the field embedding embeds the context
//! field `inter.position` and the proxy item fields `item.stat_*` (their
//! parameters are in the checkpoint), pointwise evaluation scores the
//! validation and test rows with their positions, and all-ranking (no
//! interaction rows, so no context) still runs for FM while DCN fails with a
//! hint to evaluate on rows.

use causalrec_e2e::*;

#[test]
fn obd_cp2rec_protocol_trains_field_backbones_on_context_and_item_stats() {
    if shared_data("obd").is_none() {
        return;
    }
    let body = r#"
let data = dataset("obd", #{ label: "click", split: "given", valid_share: 0.2, context: ["position"],
    item_stats: ["exposure", "ctr"], seed: 1 });
let opts = #{ epochs: 1, batch_size: 1024, lr: 0.01 };
for spec in [["fm", backbone("fm", #{ dim: 8 })],
             ["dcn", backbone("dcn", #{ dim: 8, cross_layers: 1, deep_layers: [16] })]] {
    let run = train(data, spec[1], estimator("naive"), opts);
    let t = evaluate(run, "pointwise", #{ part: "test" });
    let v = evaluate(run, "pointwise", #{ part: "valid" });
    print(`CHECK ${spec[0]}_test_n ${t.n}`);
    print(`CHECK ${spec[0]}_valid_n ${v.n}`);
    print(`CHECK ${spec[0]}_auc ${t.auc}`);
    let pos = item_embeddings(run, "main/emb.inter.position", [1, 2, 3]);
    print(`CHECK ${spec[0]}_positions ${pos.len()}`);
    try {
        let r = evaluate(run, "all_ranking", #{ k: [10] });
        print(`CHECK ${spec[0]}_ranking ${r["recall@10"]}`);
    } catch (e) {
        print(`RANKING_ERROR ${spec[0]} ${e}`);
    }
}
"#;
    let (o, out) = run_recipe("cp2rec-obd", body, &[]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{stdout}\n{err}");
    let c = checks(&stdout);
    for b in ["fm", "dcn"] {
        assert_eq!(c[&format!("{b}_test_n")], 10000.0, "{stdout}");
        assert_eq!(c[&format!("{b}_valid_n")], 2000.0, "{stdout}");
        assert_eq!(c[&format!("{b}_positions")], 3.0, "{stdout}");
        let auc = c[&format!("{b}_auc")];
        assert!(auc > 0.0 && auc < 1.0, "{stdout}");
    }
    // FM scores all-ranking batches without the context term; DCN's stacked
    // width counts the fields, so it fails with a hint to evaluate on rows
    assert!(c["fm_ranking"] >= 0.0, "{stdout}\n{err}");
    let dcn = stdout
        .lines()
        .find(|l| l.starts_with("RANKING_ERROR dcn"))
        .unwrap_or_else(|| panic!("DCN all-ranking should fail: {stdout}"));
    assert!(
        dcn.contains("context fields inter.position") && dcn.contains("\"pointwise\""),
        "{dcn}"
    );
    // the context field's table and the proxy item fields' weights are trained
    for label in ["fm-naive", "dcn-naive"] {
        let ck = std::fs::read_dir(out.join("checkpoints"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with(label) && name.ends_with(".safetensors")
            })
            .unwrap_or_else(|| panic!("no {label} checkpoint"));
        let bytes = std::fs::read(&ck).unwrap();
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(100_000)]);
        for name in [
            "table/main/emb.inter.position",
            "dense/main/emb.item.stat_exposure",
            "dense/main/emb.item.stat_ctr",
        ] {
            assert!(head.contains(name), "{name} missing from {}", ck.display());
        }
    }
}
