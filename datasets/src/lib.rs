//! causalrec data sets: columnar interaction tables with typed, role-tagged
//! feature fields ([`table`]), a reader and writer for RecBole atomic files
//! ([`atomic`]), readers of published formats (MovieLens, Amazon, KuaiRec,
//! CTAR, Open Bandit, MIND, NumPy features: [`readers`]), k-core filtering
//! ([`kcore`]), dense item features derived from categorical fields
//! ([`features`]), a binary cache of parsed data sets ([`cache`]),
//! train/validation/test splits ([`split`]), item statistics from the
//! training rows ([`item_stats`]), the seeded synthetic data set
//! bundled for the quick start ([`synthetic`]) and the causal simulator that
//! generates data from m-graph scenarios ([`sim`]).
//!
//! ```no_run
//! use causalrec_datasets::{chrono_per_user, load_atomic, AtomicOptions, Role};
//! let opts = AtomicOptions::default().with_role("class", Role::Group);
//! let ds = load_atomic("datasets/data/ml-100k".as_ref(), "ml-100k", &opts)?;
//! println!("{}\n{}", causalrec_datasets::DatasetStats::HEADER, ds.stats());
//! let split = chrono_per_user(&ds, [0.8, 0.1, 0.1])?;
//! # Ok::<(), causalrec_datasets::DataError>(())
//! ```

#![warn(missing_docs)]

pub mod atomic;
pub mod cache;
pub mod error;
pub mod features;
pub mod impressions;
pub mod item_stats;
pub mod kcore;
pub mod readers;
pub mod sim;
pub mod split;
pub mod synthetic;
pub mod table;

pub use atomic::{load_atomic, write_atomic, AtomicOptions};
pub use error::{DataError, Result};
pub use features::{add_dense_item_feature, DenseEncoding};
pub use item_stats::{add_item_stats, item_stat, ItemStat, CTR_PRIOR_ROWS};
pub use readers::ctar::{
    ctar_file_stats, ctar_table4, load_ctar, CtarFileStat, CtarOptions, CtarTask,
};
pub use readers::mind::{load_mind, parse_mind_time, MindOptions};
pub use readers::npy::{
    attach_item_features, parse_npy, read_npy, read_npz, DenseMatrix, ItemRows, NpyOptions,
};
pub use readers::obd::{load_obd, load_obd_pair, parse_obd_timestamp, ObdOptions};
// readers of published formats, k-core filtering, the binary cache
pub use cache::{cache_file, cached, cached_with_status, CacheUse, CACHE_DIR};
pub use kcore::k_core;
pub use readers::amazon::{load_amazon, AmazonOptions};
pub use readers::kuairec::{load_kuairec, KuaiRecOptions};
pub use readers::movielens::{detect_movielens, load_movielens, MovieLensFormat, MovieLensOptions};
pub use split::{
    chrono_clicks, chrono_global, chrono_per_user, given, hold_out_valid, leave_one_out,
    parts_from_column, random_split, threshold_positive, Split,
};
pub use synthetic::{
    bundled_dir, generate, load_bundled, synth_options, SynthConfig, AGE_GROUPS, BUNDLED_NAME,
};
pub use table::{Column, Dataset, DatasetStats, FieldKind, FieldMeta, Role, Table, PAD};
