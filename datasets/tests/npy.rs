//! Dense item features from `.npy` / `.npz`: files built byte by byte here,
//! read back and attached; bad files give clear errors and attach nothing.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use causalrec_datasets::{
    attach_item_features, load_ctar, parse_npy, read_npz, CtarOptions, CtarTask, Dataset,
    FieldKind, ItemRows, NpyOptions, Role,
};
use common::{fixture, npy, scratch};

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn npz(dir: &Path, name: &str, members: &[(&str, Vec<u8>)], deflate: bool) -> PathBuf {
    let p = dir.join(name);
    let mut w = zip::ZipWriter::new(fs::File::create(&p).unwrap());
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (n, bytes) in members {
        w.start_file(format!("{n}.npy"), opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap();
    p
}

/// The CTAR rating fixture: 3 items with raw ids "0", "2", "1" and a `tags`
/// item field.
fn three_items() -> Dataset {
    let ds = load_ctar(
        &fixture("ctar/good"),
        &CtarOptions {
            task: CtarTask::Rating,
        },
    )
    .unwrap();
    assert_eq!(ds.item_ids, ["0", "2", "1"]);
    ds
}

fn row(ds: &Dataset, field: &str, item: usize) -> Vec<f32> {
    ds.items
        .as_ref()
        .unwrap()
        .column(field)
        .unwrap()
        .float_seq(item)
        .to_vec()
}

const M: [f32; 6] = [0.5, 1.0, -2.0, 3.25, 4.0, 0.0];

#[test]
fn npy_f32_and_f64_attach_as_modality_fields() {
    let dir = scratch("npy");
    let v = write(
        &dir,
        "v_feat.npy",
        &npy("<f4", "(3, 2)", false, &f32_bytes(&M)),
    );
    let m64: Vec<f64> = M.iter().map(|&x| x as f64 * 2.0).collect();
    let t = write(
        &dir,
        "t_feat.npy",
        &npy("<f8", "(3, 2)", false, &f64_bytes(&m64)),
    );
    let mut ds = three_items();
    let added = attach_item_features(&mut ds, &v, &NpyOptions::default()).unwrap();
    assert_eq!(added, ["v_feat"]);
    let opts = NpyOptions {
        field: Some("textual".into()),
        ..NpyOptions::default()
    };
    assert_eq!(
        attach_item_features(&mut ds, &t, &opts).unwrap(),
        ["textual"]
    );
    ds.validate().unwrap();
    assert_eq!(row(&ds, "v_feat", 0), [0.5, 1.0]);
    assert_eq!(row(&ds, "v_feat", 2), [4.0, 0.0]);
    assert_eq!(row(&ds, "textual", 1), [-4.0, 6.5]);
    let modal = ds.items_of_role(Role::Modality);
    assert_eq!(modal.len(), 2);
    assert_eq!(modal[0].0.kind, FieldKind::FloatSeq);
    assert_eq!(modal[0].0.dim(), 2);
    // The existing tags field is still there.
    assert_eq!(ds.items_of_role(Role::Group).len(), 1);
}

#[test]
fn raw_id_rows_follow_the_raw_item_ids() {
    let dir = scratch("npy-raw");
    let v = write(&dir, "v.npy", &npy("<f4", "(3, 2)", false, &f32_bytes(&M)));
    let mut ds = three_items();
    let opts = NpyOptions {
        rows: ItemRows::RawId,
        ..NpyOptions::default()
    };
    attach_item_features(&mut ds, &v, &opts).unwrap();
    // Dense item 1 is raw item "2": row 2.
    assert_eq!(row(&ds, "v", 1), [4.0, 0.0]);
    assert_eq!(row(&ds, "v", 2), [-2.0, 3.25]);
}

#[test]
fn npz_stored_and_deflated_members() {
    let dir = scratch("npz");
    let members = [
        ("v_feat", npy("<f4", "(3, 2)", false, &f32_bytes(&M))),
        (
            "a_feat",
            npy("<f4", "(3, 1)", false, &f32_bytes(&[7.0, 8.0, 9.0])),
        ),
    ];
    for deflate in [false, true] {
        let p = npz(&dir, &format!("feat-{deflate}.npz"), &members, deflate);
        let arrays = read_npz(&p).unwrap();
        assert_eq!(arrays.len(), 2);
        assert_eq!(arrays[0].0, "v_feat");
        assert_eq!((arrays[1].1.rows, arrays[1].1.cols), (3, 1));
        let mut ds = three_items();
        let added = attach_item_features(&mut ds, &p, &NpyOptions::default()).unwrap();
        assert_eq!(added, ["v_feat", "a_feat"]);
        assert_eq!(row(&ds, "a_feat", 2), [9.0]);
        // Only the named arrays.
        let mut ds = three_items();
        let opts = NpyOptions {
            arrays: vec!["a_feat".into()],
            ..NpyOptions::default()
        };
        assert_eq!(
            attach_item_features(&mut ds, &p, &opts).unwrap(),
            ["a_feat"]
        );
        assert!(ds.items.as_ref().unwrap().field("v_feat").is_none());
    }
}

#[test]
fn bad_files_are_clear_errors_and_attach_nothing() {
    let dir = scratch("npy-bad");
    let good = f32_bytes(&M);
    let mut bad_magic = npy("<f4", "(3, 2)", false, &good);
    bad_magic[1] = b'X';
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic.npy", bad_magic, "bad magic"),
        ("magic2.npy", b"PK\x03\x04 not numpy".to_vec(), "bad magic"),
        (
            "int.npy",
            npy("<i4", "(3, 2)", false, &good),
            "unsupported dtype '<i4'",
        ),
        (
            "big.npy",
            npy(">f4", "(3, 2)", false, &good),
            "unsupported dtype '>f4'",
        ),
        (
            "flat.npy",
            npy("<f4", "(6,)", false, &good),
            "expected a 2-D array",
        ),
        (
            "cube.npy",
            npy("<f4", "(3, 1, 2)", false, &good),
            "3 dimensions",
        ),
        (
            "fortran.npy",
            npy("<f4", "(3, 2)", true, &good),
            "Fortran-order",
        ),
        (
            "short.npy",
            npy("<f4", "(3, 2)", false, &good[..20]),
            "data holds 20 bytes",
        ),
        (
            "rows.npy",
            npy("<f4", "(2, 3)", false, &good),
            "has 2 rows but the data set has 3 items",
        ),
        (
            "nan.npy",
            npy(
                "<f4",
                "(3, 2)",
                false,
                &f32_bytes(&[0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0]),
            ),
            "non-finite value NaN at row 1, column 0",
        ),
        ("trunc.npy", b"\x93NUMPY\x01\x00\xff".to_vec(), "truncated"),
        (
            "version.npy",
            b"\x93NUMPY\x09\x00\x00\x00".to_vec(),
            "unsupported .npy format version 9",
        ),
    ];
    for (name, bytes, needle) in cases {
        let p = write(&dir, name, &bytes);
        let mut ds = three_items();
        let before = ds.clone();
        let e = attach_item_features(&mut ds, &p, &NpyOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(name), "{text}");
        assert!(text.contains(needle), "'{needle}' not in: {text}");
        assert_eq!(ds, before, "{name}: nothing attached");
    }

    // An npz whose second array has the wrong row count attaches neither.
    let p = npz(
        &dir,
        "mixed.npz",
        &[
            ("v_feat", npy("<f4", "(3, 2)", false, &good)),
            ("a_feat", npy("<f4", "(4, 1)", false, &f32_bytes(&[1.0; 4]))),
        ],
        false,
    );
    let mut ds = three_items();
    let before = ds.clone();
    let e = attach_item_features(&mut ds, &p, &NpyOptions::default()).unwrap_err();
    assert!(e.to_string().contains("mixed.npz/a_feat.npy"), "{e}");
    assert!(e.to_string().contains("4 rows"), "{e}");
    assert_eq!(ds, before);
    // A missing array, a taken name, a non-zip .npz.
    let opts = NpyOptions {
        arrays: vec!["t_feat".into()],
        ..NpyOptions::default()
    };
    let e = attach_item_features(&mut ds, &p, &opts).unwrap_err();
    assert!(e.to_string().contains("no array 't_feat'"), "{e}");
    let tags = write(&dir, "tags.npy", &npy("<f4", "(3, 2)", false, &good));
    let e = attach_item_features(&mut ds, &tags, &NpyOptions::default()).unwrap_err();
    assert!(e.to_string().contains("'tags' already exists"), "{e}");
    let fake = write(&dir, "fake.npz", b"not a zip");
    let e = attach_item_features(&mut ds, &fake, &NpyOptions::default()).unwrap_err();
    assert!(e.to_string().contains("fake.npz"), "{e}");
    assert_eq!(ds, before);
    // Raw ids that are not row indices.
    let mut mind =
        causalrec_datasets::load_mind(&fixture("mind/good"), &Default::default()).unwrap();
    let v = write(
        &dir,
        "v4.npy",
        &npy("<f4", "(4, 1)", false, &f32_bytes(&[1.0; 4])),
    );
    let opts = NpyOptions {
        rows: ItemRows::RawId,
        ..NpyOptions::default()
    };
    let e = attach_item_features(&mut mind, &v, &opts).unwrap_err();
    assert!(
        e.to_string().contains("item id 'N2' is not a row index"),
        "{e}"
    );
}

#[test]
fn parse_npy_reads_version_2_headers() {
    let v1 = npy("<f4", "(1, 2)", false, &f32_bytes(&[1.0, 2.0]));
    // Rewrite as version 2: 4-byte header length.
    let hlen = u16::from_le_bytes([v1[8], v1[9]]) as u32;
    let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
    v2.extend_from_slice(&hlen.to_le_bytes());
    v2.extend_from_slice(&v1[10..]);
    let m = parse_npy(&v2, "v2.npy").unwrap();
    assert_eq!(
        (m.rows, m.cols, m.data.as_slice()),
        (1, 2, &[1.0f32, 2.0][..])
    );
    assert_eq!(m.row(0), &[1.0, 2.0]);
}
