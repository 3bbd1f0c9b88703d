//! Read-only lookups the operator defines by name in the host configuration
//! (for example, the notification methods of an alarm definition). A guest
//! can only run queries the operator named; under the native
//! [`crate::testing::Harness`] the test supplies the answers.

/// A value in a lookup row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Text.
    Text(String),
    /// Integer.
    Integer(i64),
    /// Float.
    Float(f64),
    /// Binary.
    Bytes(Vec<u8>),
}

impl Cell {
    /// The cell as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The cell as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Integer(v) => Some(*v),
            _ => None,
        }
    }
}

/// One row: (column name, value) pairs in select order.
pub type Row = Vec<(String, Cell)>;

/// Run the named query with positional parameters.
pub fn query(name: &str, params: &[&str]) -> Result<Vec<Row>, String> {
    imp::query(name, params)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Cell, Row};
    use crate::bindings::monasca::processor::lookup as host;
    use crate::bindings::monasca::processor::types::Cell as WitCell;

    pub fn query(name: &str, params: &[&str]) -> Result<Vec<Row>, String> {
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        let rows = host::query(name, &params)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(column, cell)| {
                        let cell = match cell {
                            WitCell::Null => Cell::Null,
                            WitCell::Text(s) => Cell::Text(s),
                            WitCell::Integer(v) => Cell::Integer(v),
                            WitCell::Float(v) => Cell::Float(v),
                            WitCell::Bytes(b) => Cell::Bytes(b),
                        };
                        (column, cell)
                    })
                    .collect()
            })
            .collect())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::Row;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A test's answer to a lookup.
    pub type Answer = Box<dyn Fn(&[&str]) -> Result<Vec<Row>, String>>;

    thread_local! {
        static ANSWERS: RefCell<HashMap<String, Answer>> = RefCell::new(HashMap::new());
    }

    pub fn query(name: &str, params: &[&str]) -> Result<Vec<Row>, String> {
        ANSWERS.with(|answers| match answers.borrow().get(name) {
            Some(answer) => answer(params),
            None => Err(format!("no lookup named `{name}` is configured")),
        })
    }

    pub fn set(name: &str, answer: Answer) {
        ANSWERS.with(|answers| answers.borrow_mut().insert(name.to_string(), answer));
    }

    pub fn clear() {
        ANSWERS.with(|answers| answers.borrow_mut().clear());
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use imp::{clear as clear_native_answers, set as set_native_answer, Answer};
