//! What the subcommands print: one JSON object per row on stdout (the Markdown tables are made
//! from these by `plainjobs-bench table`), progress on stderr.

use serde_json::{json, Value};

use crate::hist::merge;
use crate::target::{Backend, Target};

pub fn log(msg: impl std::fmt::Display) {
    eprintln!("[plainjobs-bench] {msg}");
}

/// One row of one question's table.
pub struct Row(Value);

impl Row {
    /// `question` picks the table, `row` names the row within it.
    pub fn new(question: &str, target: &Target, row: &str) -> Row {
        Row(json!({
            "question": question,
            "cluster": target.label(),
            "backend": match target.backend() {
                Backend::Postgres => "postgres",
                Backend::Sqlite => "sqlite",
            },
            "row": row,
        }))
    }

    pub fn with(mut self, fields: Value) -> Row {
        merge(&mut self.0, fields);
        self
    }

    pub fn emit(self) {
        println!("{}", self.0);
    }
}
