//! MovieLens in its original GroupLens formats: ml-100k (`u.data`,
//! `u.item`, `u.user`) and ml-1m (`ratings.dat`, `movies.dat`,
//! `users.dat`); [`load_movielens`] detects which from the files present.
//!
//! Both give `inter` fields `user_id`, `item_id`, `rating` ([`Role::Rating`])
//! and `timestamp` ([`Role::Timestamp`], exact); item fields `title`,
//! `release_year` (tokens) and `genre` (token_seq, [`Role::Group`]); user
//! fields `age`, `gender`, `occupation`, `zip_code` (tokens; ml-1m's age
//! and occupation are GroupLens' codes). Users and items are numbered by
//! first appearance in the ratings file. Lines that are not UTF-8 are read
//! as Latin-1, the files' encoding.

use std::path::Path;

use crate::error::{DataError, Result};
use crate::readers::columns::{FeatureTable, InterBuilder, Sources};
use crate::readers::delimited::{Delim, DelimitedReader, Header, Record};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role};

/// The 19 genres of ml-100k's `u.item` flags, in column order (`u.genre`).
pub const ML100K_GENRES: [&str; 19] = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
];

/// Which MovieLens release a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovieLensFormat {
    /// MovieLens 100K: tab-separated `u.data`, `|`-separated `u.item` and
    /// `u.user`.
    Ml100k,
    /// MovieLens 1M: `::`-separated `ratings.dat`, `movies.dat`,
    /// `users.dat`.
    Ml1m,
}

impl MovieLensFormat {
    /// The data set name, `ml-100k` or `ml-1m`.
    pub fn name(self) -> &'static str {
        match self {
            MovieLensFormat::Ml100k => "ml-100k",
            MovieLensFormat::Ml1m => "ml-1m",
        }
    }

    /// The ratings, item and user file names.
    pub fn files(self) -> [&'static str; 3] {
        match self {
            MovieLensFormat::Ml100k => ["u.data", "u.item", "u.user"],
            MovieLensFormat::Ml1m => ["ratings.dat", "movies.dat", "users.dat"],
        }
    }
}

/// How to read a MovieLens folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovieLensOptions {
    /// Read the item file when present (default true).
    pub item_features: bool,
    /// Read the user file when present (default true).
    pub user_features: bool,
    /// Every rated item (user) must have a line in the item (user) file
    /// when that file is read (default true: GroupLens' files are
    /// complete); an unknown id is an error naming the ratings line.
    pub require_known_ids: bool,
}

impl Default for MovieLensOptions {
    fn default() -> Self {
        MovieLensOptions {
            item_features: true,
            user_features: true,
            require_known_ids: true,
        }
    }
}

/// Which release `dir` holds: `u.data` means ml-100k, `ratings.dat`
/// ml-1m. A [`DataError::Config`] if neither or both are there.
pub fn detect_movielens(dir: &Path) -> Result<MovieLensFormat> {
    let has = |f: &str| dir.join(f).is_file();
    match (has("u.data"), has("ratings.dat")) {
        (true, false) => Ok(MovieLensFormat::Ml100k),
        (false, true) => Ok(MovieLensFormat::Ml1m),
        (true, true) => Err(DataError::Config(format!(
            "{}: holds both u.data (ml-100k) and ratings.dat (ml-1m)",
            dir.display()
        ))),
        (false, false) => Err(DataError::Config(format!(
            "{}: no MovieLens ratings file (u.data for ml-100k, ratings.dat for ml-1m)",
            dir.display()
        ))),
    }
}

/// Reads the MovieLens release in `dir` (see the module documentation).
/// Errors name the file, 1-based line and column: a wrong delimiter or a
/// missing column (wrong number of cells), a bad number, a bad genre flag,
/// a duplicate feature line, or (with
/// [`MovieLensOptions::require_known_ids`]) a rated id absent from the
/// item or user file.
pub fn load_movielens(dir: &Path, opts: &MovieLensOptions) -> Result<Dataset> {
    let format = detect_movielens(dir)?;
    let [ratings, item_file, user_file] = format.files().map(|f| dir.join(f));
    let delim = match format {
        MovieLensFormat::Ml100k => Delim::Char('\t'),
        MovieLensFormat::Ml1m => Delim::Str("::"),
    };
    let cols = ["user_id", "item_id", "rating", "timestamp"];
    let reader = DelimitedReader::open(&ratings, delim, Header::Fixed(&cols))?.latin1_fallback();
    let sources = Sources(vec![(
        reader.file().to_string(),
        "user_id".into(),
        "item_id".into(),
    )]);
    let mut inter = InterBuilder::default();
    let (mut rating, mut time) = (Vec::new(), Vec::new());
    reader.for_each(|rec| {
        inter.push(rec, 0, 1, 0)?;
        rating.push(rec.f32(2)?);
        time.push(rec.f64(3)?);
        Ok(())
    })?;

    let items = if opts.item_features && item_file.is_file() {
        let t = match format {
            MovieLensFormat::Ml100k => read_u_item(&item_file, &inter)?,
            MovieLensFormat::Ml1m => read_movies_dat(&item_file, &inter)?,
        };
        if opts.require_known_ids {
            t.require_all(&inter.items, &sources, Role::Item)?;
        }
        t.finish()
    } else {
        None
    };
    let users = if opts.user_features && user_file.is_file() {
        let t = read_users(&user_file, format, &inter)?;
        if opts.require_known_ids {
            t.require_all(&inter.users, &sources, Role::User)?;
        }
        t.finish()
    } else {
        None
    };
    inter.finish(
        format.name(),
        "user_id",
        "item_id",
        vec![
            (
                FieldMeta::new("rating", FieldKind::Float, Role::Rating),
                Column::Float(rating),
            ),
            (
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64(time),
            ),
        ],
        users,
        items,
        Default::default(),
    )
}

fn item_fields() -> Vec<FieldMeta> {
    vec![
        FieldMeta::new("title", FieldKind::Token, Role::Feature),
        FieldMeta::new("release_year", FieldKind::Token, Role::Feature),
        FieldMeta::new("genre", FieldKind::TokenSeq, Role::Group),
    ]
}

/// `"Toy Story (1995)"` -> `("Toy Story", Some("1995"))`.
fn split_title(title: &str) -> (&str, Option<&str>) {
    let t = title.trim();
    if let Some(open) = t
        .strip_suffix(')')
        .and_then(|s| s.rfind('(').map(|i| (s, i)))
    {
        let (s, i) = open;
        let year = &s[i + 1..];
        if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) {
            return (s[..i].trim_end(), Some(year));
        }
    }
    (t, None)
}

/// `u.item`: `id|title|release date|video release date|IMDb URL|` then 19
/// `0`/`1` genre flags.
fn read_u_item(path: &Path, inter: &InterBuilder) -> Result<FeatureTable> {
    let mut cols = vec![
        "item_id",
        "title",
        "release_date",
        "video_release_date",
        "imdb_url",
    ];
    cols.extend(ML100K_GENRES);
    let reader =
        DelimitedReader::open(path, Delim::Char('|'), Header::Fixed(&cols))?.latin1_fallback();
    let mut t = FeatureTable::new(reader.file(), "item_id", inter.items.len(), item_fields());
    reader.for_each(|rec| {
        if !t.row(rec, 0, &inter.items)? {
            return Ok(());
        }
        let (title, title_year) = split_title(rec.get(1));
        let date = rec.get(2).trim();
        let year = if date.is_empty() {
            title_year.unwrap_or("")
        } else {
            match date.rsplit('-').next() {
                Some(y) if y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()) => y,
                _ => return Err(rec.error(2, format!("'{date}' is not a dd-Mon-yyyy date"))),
            }
        };
        let mut genres = Vec::new();
        for (g, name) in ML100K_GENRES.iter().enumerate() {
            match rec.get(5 + g).trim() {
                "1" => genres.push(*name),
                "0" => {}
                other => {
                    return Err(rec.error(5 + g, format!("genre flag '{other}' is not 0 or 1")))
                }
            }
        }
        t.token(0, title);
        t.token(1, year);
        t.seq(2, genres);
        Ok(())
    })?;
    Ok(t)
}

/// `movies.dat`: `id::Title (Year)::Genre1|Genre2`.
fn read_movies_dat(path: &Path, inter: &InterBuilder) -> Result<FeatureTable> {
    let cols = ["item_id", "title", "genres"];
    let reader =
        DelimitedReader::open(path, Delim::Str("::"), Header::Fixed(&cols))?.latin1_fallback();
    let mut t = FeatureTable::new(reader.file(), "item_id", inter.items.len(), item_fields());
    reader.for_each(|rec| {
        if !t.row(rec, 0, &inter.items)? {
            return Ok(());
        }
        let (title, year) = split_title(rec.get(1));
        t.token(0, title);
        t.token(1, year.unwrap_or(""));
        t.seq(2, rec.get(2).split('|'));
        Ok(())
    })?;
    Ok(t)
}

/// `u.user` (`id|age|gender|occupation|zip`) or `users.dat`
/// (`id::gender::age::occupation::zip`).
fn read_users(path: &Path, format: MovieLensFormat, inter: &InterBuilder) -> Result<FeatureTable> {
    let (delim, cols): (Delim, &[&str]) = match format {
        MovieLensFormat::Ml100k => (
            Delim::Char('|'),
            &["user_id", "age", "gender", "occupation", "zip_code"],
        ),
        MovieLensFormat::Ml1m => (
            Delim::Str("::"),
            &["user_id", "gender", "age", "occupation", "zip_code"],
        ),
    };
    let names = ["age", "gender", "occupation", "zip_code"];
    let fields = names
        .iter()
        .map(|n| FieldMeta::new(*n, FieldKind::Token, Role::Feature))
        .collect();
    let reader = DelimitedReader::open(path, delim, Header::Fixed(cols))?.latin1_fallback();
    let mut t = FeatureTable::new(reader.file(), "user_id", inter.users.len(), fields);
    let at: Vec<usize> = names
        .iter()
        .map(|n| cols.iter().position(|c| c == n).unwrap_or(0))
        .collect();
    reader.for_each(|rec: &Record<'_>| {
        if !t.row(rec, 0, &inter.users)? {
            return Ok(());
        }
        if format == MovieLensFormat::Ml100k {
            // ages are whole years
            rec.get(at[0]).trim().parse::<u32>().map_err(|_| {
                rec.error(at[0], format!("'{}' is not a whole number", rec.get(at[0])))
            })?;
        }
        for (f, &c) in at.iter().enumerate() {
            t.token(f, rec.get(c));
        }
        Ok(())
    })?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_split_off_their_year() {
        assert_eq!(split_title("Toy Story (1995)"), ("Toy Story", Some("1995")));
        assert_eq!(
            split_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)"),
            (
                "City of Lost Children, The (Cité des enfants perdus, La)",
                Some("1995")
            )
        );
        assert_eq!(split_title("unknown"), ("unknown", None));
        assert_eq!(split_title("Big (x)"), ("Big (x)", None));
    }
}
