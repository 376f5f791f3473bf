//! The MIND reader on hand-written, format-exact fixtures (no MIND data).

mod common;

use causalrec_datasets::{load_mind, Dataset, MindOptions, Role};
use common::{assert_parse_err, fixture, with_bad_file};

fn seq_strs(meta: &causalrec_datasets::FieldMeta, ids: &[u32]) -> Vec<String> {
    ids.iter()
        .map(|&i| meta.token_str(i).unwrap().to_string())
        .collect()
}

fn item_seq(ds: &Dataset, field: &str, raw_item: &str) -> Vec<String> {
    let i = ds.item_ids.iter().position(|s| s == raw_item).unwrap();
    let items = ds.items.as_ref().unwrap();
    let (fi, meta) = items.field(field).unwrap();
    seq_strs(meta, items.columns[fi].seq(i))
}

#[test]
fn fixture_loads_one_row_per_candidate() {
    let ds = load_mind(&fixture("mind/good"), &MindOptions::default()).unwrap();
    assert_eq!(ds.name, "mind");
    assert_eq!((ds.n_inter(), ds.n_users, ds.n_items), (6, 2, 4));
    assert_eq!(ds.user_ids, ["U100", "U200"]);
    assert_eq!(ds.item_ids, ["N2", "N4", "N1", "N3"]);
    assert_eq!(ds.user_col(), &[0, 0, 1, 1, 1, 0]);
    let label = ds.inter.column("label").unwrap().as_floats().unwrap();
    assert_eq!(label, &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    assert_eq!(ds.inter.field_by_role(Role::Label).unwrap().1.name, "label");

    // Impressions group the candidate rows.
    let (ii, imeta) = ds.inter.field("impression").unwrap();
    let imp: Vec<&str> = (0..6)
        .map(|r| imeta.token_str(ds.inter.columns[ii].token(r)).unwrap())
        .collect();
    assert_eq!(imp, ["1", "1", "2", "2", "2", "3"]);
    assert_eq!(imeta.role, Role::Feature);

    // History per row; impression 2 has none.
    let (hi, hmeta) = ds.inter.field("history").unwrap();
    assert_eq!(hmeta.role, Role::Feature);
    let hist = &ds.inter.columns[hi];
    assert_eq!(seq_strs(hmeta, hist.seq(0)), ["N1", "N3"]);
    assert!(hist.seq(2).is_empty());
    assert_eq!(seq_strs(hmeta, hist.seq(5)), ["N1", "N3"]);

    // Exact unix seconds: 9:05:10 - 8:55:22 after the first line, then one
    // day and 4:34:38 later.
    let ts = ds.timestamp_col().unwrap();
    assert!(ts[0] > 1.5e9, "{}", ts[0]);
    let since: Vec<f64> = ts.iter().map(|t| t - ts[0]).collect();
    assert_eq!(since, [0.0, 0.0, 588.0, 588.0, 588.0, 102_878.0]);

    // Items: category (group), subcategory, query, text.
    let groups = ds.items_of_role(Role::Group);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].0.name, "category");
    assert_eq!(item_seq(&ds, "query", "N1"), ["sports", "golf", "Q5377"]);
    assert_eq!(item_seq(&ds, "query", "N2"), ["news", "newsus", "Q1752346"]);
    assert_eq!(
        item_seq(&ds, "query", "N3"),
        ["lifestyle", "lifestyleroyals"]
    );
    // Title then abstract entities; each token once.
    assert_eq!(
        item_seq(&ds, "query", "N4"),
        ["sports", "football_nfl", "Q622747", "Q5377"]
    );
    // The item's words: title, then abstract.
    assert_eq!(
        item_seq(&ds, "text", "N2"),
        "City council approves budget The council voted 7-2 on Tuesday."
            .split(' ')
            .collect::<Vec<_>>()
    );
    let q = ds.items_of_role(Role::Query);
    assert_eq!(q[0].0.name, "query");
    assert_eq!(q[0].0.max_len, 4);
    let items = ds.items.as_ref().unwrap();
    let (si, _) = items.field("subcategory").unwrap();
    assert_eq!(items.cell_text(si, 1), "football_nfl");
    let (ci, _) = items.field("category").unwrap();
    assert_eq!(items.cell_text(ci, 2), "sports");
}

#[test]
fn fixture_errors_name_file_line_and_column() {
    let cases = [
        (
            "behaviors.tsv",
            "mind/bad/behaviors_commas.tsv",
            1,
            "user_id",
            "comma-separated",
        ),
        (
            "news.tsv",
            "mind/bad/news_missing_column.tsv",
            2,
            "abstract_entities",
            "expected 8 tab-separated cells, found 7",
        ),
        (
            "behaviors.tsv",
            "mind/bad/behaviors_bad_time.tsv",
            2,
            "time",
            "9:65:10",
        ),
        (
            "behaviors.tsv",
            "mind/bad/behaviors_unknown_news.tsv",
            3,
            "impressions",
            "unknown news id 'N9'",
        ),
        (
            "behaviors.tsv",
            "mind/bad/behaviors_unknown_history.tsv",
            2,
            "history",
            "unknown news id 'N8'",
        ),
        (
            "behaviors.tsv",
            "mind/bad/behaviors_bad_label.tsv",
            1,
            "impressions",
            "label 'x'",
        ),
        (
            "news.tsv",
            "mind/bad/news_bad_entities.tsv",
            4,
            "abstract_entities",
            "not a JSON list",
        ),
    ];
    for (target, bad, line, column, needle) in cases {
        let dir = with_bad_file("mind/good", target, bad);
        let e = load_mind(&dir, &MindOptions::default()).unwrap_err();
        assert_parse_err(&e, target, line, column, needle);
    }
}
