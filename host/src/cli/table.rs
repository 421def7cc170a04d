//! Plain aligned tables for terminal output.

use comfy_table::presets::NOTHING;
use comfy_table::{CellAlignment, Table};

/// A table with a header row, no borders, columns aligned.
pub fn new(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(NOTHING).set_header(header.iter().copied());
    table
}

/// Right-aligns the given columns (numbers).
pub fn align_right(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Writes the table: two spaces between columns, none at the edges.
pub fn print(out: &mut impl std::io::Write, table: &mut Table) -> std::io::Result<()> {
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    for line in table.lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
