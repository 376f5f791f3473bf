//! Checkpoint and resume, atomic writes, determinism, end to end:
//! - a run SIGKILLed mid-epoch (once a mid-epoch checkpoint exists) and
//!   resumed with `host run --resume` ends with bitwise the same metrics and
//!   epoch logs as an uninterrupted run; the training that had finished is
//!   loaded, not retrained;
//! - a changed recipe or training configuration is refused;
//! - a read-only run or checkpoint folder (as root: the host runs as
//!   `nobody`) is an error naming the file and leaves the previous checkpoint
//!   as it was;
//! - the same seed gives bitwise the same metrics twice.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use causalrec_e2e::{fixtures, host, host_command, run_recipe, scratch, text};
use serde_json::Value;

/// Two trainings: `A` finishes before the kill, `B` (early stopping, Adam on
/// a dense bias and sparse tables, two negatives, a checkpoint every 40
/// steps) is killed mid-epoch.
const RECIPE: &str = r#"
let d = dataset("bundled");
let a = train(d, backbone("mf", #{dim: 8}), estimator("naive"), #{name: "A", epochs: 2, batch_size: 256, lr: 0.01, negatives: 2});
let b = train(d, backbone("ncf", #{factors: 8}), estimator("naive"), #{name: "B", epochs: 5, batch_size: 16, lr: 0.003, negatives: 2, early_stop: 2, metric: "ndcg@10", checkpoint_every: 40});
let ra = evaluate(a, "all_ranking");
let rb = evaluate(b, "all_ranking");
print(`CHECK b_ndcg ${rb["ndcg@10"]}`);
"#;

/// The JSON progress inside a training-state checkpoint (safetensors: an
/// 8-byte header length, the JSON header, then the data).
fn progress(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: Value = serde_json::from_slice(bytes.get(8..8 + n)?).ok()?;
    let offs = header.get("state/progress")?.get("data_offsets")?;
    let (a, b) = (offs[0].as_u64()? as usize, offs[1].as_u64()? as usize);
    serde_json::from_slice(bytes.get(8 + n + a..8 + n + b)?).ok()
}

/// report.json's rows without the timing values.
fn metrics(out: &Path) -> Vec<Value> {
    let rows: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    rows.into_iter()
        .map(|mut r| {
            if let Some(v) = r.get_mut("values").and_then(Value::as_object_mut) {
                v.remove("train_seconds");
                v.remove("examples_per_second");
            }
            r
        })
        .collect()
}

/// metrics.jsonl's lines without the timing values.
fn epoch_logs(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("examples_per_second");
            v
        })
        .collect()
}

fn run_args<'a>(recipe: &'a str, out: &'a str, fx: &'a str) -> Vec<&'a str> {
    vec!["run", recipe, "--out", out, "--plugin-dir", fx]
}

fn write_recipe(dir: &Path, body: &str) -> PathBuf {
    let p = dir.join("recipe.rhai");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn a_run_killed_mid_epoch_resumes_to_the_same_metrics() {
    let dir = scratch("resume_kill");
    let recipe = write_recipe(&dir, RECIPE);
    let fx = fixtures();
    let (r, fxs) = (recipe.to_str().unwrap(), fx.to_str().unwrap());

    let full = dir.join("full");
    let t0 = Instant::now();
    let o = host(&run_args(r, full.to_str().unwrap(), fxs));
    assert!(o.status.success(), "{}", text(&o).1);
    eprintln!("uninterrupted run: {:.1} s", t0.elapsed().as_secs_f64());

    // Start again, SIGKILL once B has a mid-epoch checkpoint past epoch 1.
    let killed = dir.join("killed");
    let mut child = host_command(&run_args(r, killed.to_str().unwrap(), fxs))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ckpt = killed.join("checkpoints/B-last.safetensors");
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if let Some(p) = progress(&ckpt) {
            if p["epoch"].as_u64() >= Some(2) && p["epoch_done"] == Value::Bool(false) {
                break;
            }
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before a mid-epoch checkpoint of epoch >= 2 appeared"
        );
        assert!(Instant::now() < deadline, "no mid-epoch checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let p = progress(&ckpt).expect("the checkpoint survives the kill");
    eprintln!(
        "killed at epoch {}, {} batches done",
        p["epoch"], p["batches_done"]
    );
    assert_eq!(p["epoch_done"], Value::Bool(false), "{p}");
    assert!(p["batches_done"].as_u64().unwrap() > 0);
    assert!(!killed.join("report.json").exists() || metrics(&killed).len() < 4);

    let o = host(&[
        "run",
        "--resume",
        killed.to_str().unwrap(),
        "--plugin-dir",
        fxs,
    ]);
    let (so, se) = text(&o);
    assert!(o.status.success(), "{se}");
    assert!(se.contains("training 'A' had finished; loaded"), "{se}");
    assert!(se.contains("training 'B' continues from"), "{se}");
    assert!(so.contains("CHECK b_ndcg"), "{so}");
    let (m_full, m_res) = (metrics(&full), metrics(&killed));
    assert_eq!(m_full.len(), 4);
    assert_eq!(m_full, m_res, "report.json differs after resume");
    assert_eq!(
        epoch_logs(&full),
        epoch_logs(&killed),
        "metrics.jsonl differs"
    );
}

/// One short training.
const ONE_TRAINING: &str = r#"let d = dataset("bundled");
        train(d, backbone("mf", #{dim: 8}), estimator("naive"), #{name: "A", epochs: 1, lr: 0.01});"#;

/// A scratch folder with [`ONE_TRAINING`] run to the end into `out`:
/// (folder, recipe, out, the `host` arguments of that run).
fn finished_run(name: &str) -> (PathBuf, PathBuf, PathBuf, Vec<String>) {
    let dir = scratch(name);
    let recipe = write_recipe(&dir, ONE_TRAINING);
    let out = dir.join("out");
    let fx = fixtures();
    let args: Vec<String> = run_args(
        recipe.to_str().unwrap(),
        out.to_str().unwrap(),
        fx.to_str().unwrap(),
    )
    .into_iter()
    .map(String::from)
    .collect();
    let o = host(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", text(&o).1);
    (dir, recipe, out, args)
}

#[test]
fn resume_refuses_a_changed_recipe_or_configuration() {
    let (dir, recipe, out, _) = finished_run("resume_changed");
    let body = ONE_TRAINING;
    let resume = |extra: &[&str]| {
        let mut a = vec!["run", "--resume", out.to_str().unwrap()];
        a.extend(extra);
        host(&a)
    };
    // Unchanged: the finished training is loaded.
    let o = resume(&[]);
    assert!(o.status.success(), "{}", text(&o).1);
    // Another seed than the run's.
    let se = text(&resume(&["--seed", "7"])).1;
    assert!(se.contains("--seed 7 differs from the run's 2024"), "{se}");
    // The training's recorded configuration differs (as if the run had used lr 0.02).
    let mpath = out.join("resume.json");
    let original = std::fs::read_to_string(&mpath).unwrap();
    let mut m: Value = serde_json::from_str(&original).unwrap();
    m["trainings"][0]["config"]["call"]["train"]["optim"]["lr"] = serde_json::json!(0.02);
    m["trainings"][0]["config_hash"] = "0000000000000000".into();
    std::fs::write(&mpath, serde_json::to_string(&m).unwrap()).unwrap();
    let o = resume(&[]);
    let se = text(&o).1;
    assert!(!o.status.success());
    assert!(
        se.contains("training 'A' was started with another configuration")
            && se.contains("call.train.optim.lr: 0.02 -> 0.01"),
        "{se}"
    );
    std::fs::write(&mpath, original).unwrap();
    // The recipe changed.
    std::fs::write(&recipe, format!("{body}\n// edited\n")).unwrap();
    let o = resume(&[]);
    let se = text(&o).1;
    assert!(!o.status.success());
    assert!(
        se.contains("recipe.rhai changed since the run started"),
        "{se}"
    );
    // Not a run folder.
    let se = text(&host(&["run", "--resume", dir.to_str().unwrap()])).1;
    assert!(se.contains("resume.json"), "{se}");
}

/// Make a folder read-only (or writable again).
fn set_read_only(p: &Path, ro: bool) {
    let mut perm = std::fs::metadata(p).unwrap().permissions();
    perm.set_readonly(ro);
    std::fs::set_permissions(p, perm).unwrap();
}

#[test]
fn an_unwritable_folder_is_an_error_naming_the_file_and_keeps_the_checkpoint() {
    let (_, _, out, args) = finished_run("readonly");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ck = out.join("checkpoints");
    let last = ck.join("A-last.safetensors");
    let before = std::fs::read(&last).unwrap();

    // Read-only folders stop writes unless running as root; as root, the
    // host runs as `nobody` (setpriv) on a folder given to it, else the
    // checks are skipped.
    let nobody = 65534;
    let writable_as_me = {
        set_read_only(&ck, true);
        let probe = ck.join("probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(&probe);
        set_read_only(&ck, false);
        ok
    };
    let setpriv = Path::new("/usr/bin/setpriv");
    if writable_as_me && !setpriv.is_file() {
        eprintln!("skipped: running as root without setpriv, a read-only folder is still writable");
        return;
    }
    let run_host = |args: &[&str]| {
        if !writable_as_me {
            return host(args);
        }
        let c = host_command(args);
        let prog = c.get_program().to_owned();
        let mut su = std::process::Command::new(setpriv);
        su.args([
            format!("--reuid={nobody}"),
            format!("--regid={nobody}"),
            "--clear-groups".into(),
        ])
        .arg(prog)
        .args(c.get_args())
        .current_dir(c.get_current_dir().unwrap())
        .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))));
        su.output().unwrap()
    };
    if writable_as_me {
        for e in walk(&out) {
            std::os::unix::fs::chown(&e, Some(nobody), Some(nobody)).unwrap();
        }
    }
    // A new run into the same folder: the checkpoint write fails.
    set_read_only(&ck, true);
    let o = run_host(&args);
    set_read_only(&ck, false);
    let se = text(&o).1;
    assert!(!o.status.success());
    assert!(
        se.contains(&format!("cannot write {}", last.display())) && se.contains("ermission"),
        "{se}"
    );
    assert_eq!(std::fs::read(&last).unwrap(), before, "checkpoint changed");
    let leftovers: Vec<_> = std::fs::read_dir(&ck)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The whole run folder read-only: the first write names its file.
    let report = std::fs::read(out.join("report.json")).unwrap();
    set_read_only(&out, true);
    let o = run_host(&args);
    set_read_only(&out, false);
    let se = text(&o).1;
    assert!(!o.status.success());
    assert!(
        se.contains(&format!(
            "cannot write {}",
            out.join("metrics.jsonl").display()
        )),
        "{se}"
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), report);
    assert_eq!(std::fs::read(&last).unwrap(), before);
}

/// A folder and everything under it.
fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap().filter_map(|e| e.ok()) {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn the_same_seed_gives_bitwise_identical_metrics() {
    let body = r#"let d = dataset("bundled");
        let r = train(d, backbone("ncf", #{factors: 8}), estimator("naive"), #{epochs: 2, batch_size: 128, lr: 0.005, negatives: 2});
        evaluate(r, "all_ranking");"#;
    let (o1, out1) = run_recipe("determinism1", body, &["--seed", "11"]);
    let (o2, out2) = run_recipe("determinism2", body, &["--seed", "11"]);
    assert!(
        o1.status.success() && o2.status.success(),
        "{}",
        text(&o1).1
    );
    let (m1, m2) = (metrics(&out1), metrics(&out2));
    assert_eq!(m1, m2);
    assert!(m1[1]["values"]["ndcg@10"].as_f64().unwrap() > 0.0);
    // Another seed gives other numbers (the comparison can fail).
    let (o3, out3) = run_recipe("determinism3", body, &["--seed", "12"]);
    assert!(o3.status.success());
    assert_ne!(metrics(&out3), m1);
}
