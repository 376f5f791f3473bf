//! Errors raised while reading, building, splitting or writing data sets.
//!
//! Every fallible function of this crate returns [`Result`]. The variants
//! name the file (and, for parse errors, the 1-based line and the column) so
//! that a user can fix a broken data file without a debugger.

/// An error from this crate.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A value or a header cell could not be parsed.
    ///
    /// `line` is 1-based and counts the header line, so the first data line
    /// is line 2.
    #[error("{file}:{line}: column '{column}': {msg}")]
    Parse {
        /// The file being read.
        file: String,
        /// The 1-based line number (the header is line 1).
        line: usize,
        /// The column (field name, or header cell text) the problem is in.
        column: String,
        /// What is wrong, including the offending value where there is one.
        msg: String,
    },
    /// A file could not be opened, read, created or written.
    #[error("{file}: {source}")]
    Io {
        /// The file (or directory) concerned.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file parsed, but its columns do not fit what was asked for
    /// (a required column is missing, or has the wrong type).
    #[error("{file}: {msg}")]
    Schema {
        /// The file concerned.
        file: String,
        /// What is wrong, listing the columns found where useful.
        msg: String,
    },
    /// A bad argument: split ratios that do not sum to 1, a chronological
    /// split of a data set without timestamps, and so on.
    #[error("configuration error: {0}")]
    Config(String),
    /// A simulator scenario failed: a script error, an invalid m-graph, a
    /// bad parameter, a file outside the sandbox.
    #[error("{file}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Scenario {
        /// The scenario file.
        file: String,
        /// The 1-based line concerned, if known.
        line: Option<usize>,
        /// What is wrong, naming the node or parameter.
        msg: String,
    },
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_display_names_file_line_and_column() {
        let e = DataError::Parse {
            file: "a.inter".into(),
            line: 3,
            column: "rating".into(),
            msg: "not a number: 'x'".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.inter:3: column 'rating': not a number: 'x'"
        );
    }
}
