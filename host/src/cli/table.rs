//! Plain aligned tables for terminal output: a header row, columns two
//! spaces apart, numbers aligned right. Widths are found in one pass over
//! the rows, so a table of 100,000 rows costs what printing them does.

use std::io::Write;

/// Rows under a header.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

/// A table with this header row.
pub fn new(header: &[&str]) -> Table {
    Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows: Vec::new(),
        right: vec![false; header.len()],
    }
}

impl Table {
    /// Adds a row; missing cells are empty.
    pub fn add_row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }
}

/// Right-aligns the given columns (numbers).
pub fn align_right(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(right) = table.right.get_mut(index) {
            *right = true;
        }
    }
}

/// Writes the table: two spaces between columns, none at the edges.
pub fn print(out: &mut impl Write, table: &mut Table) -> std::io::Result<()> {
    let columns = table.header.len();
    let mut widths: Vec<usize> = table.header.iter().map(|h| h.chars().count()).collect();
    for row in &table.rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = String::new();
    for row in std::iter::once(&table.header).chain(&table.rows) {
        line.clear();
        for (index, width) in widths.iter().enumerate().take(columns) {
            let cell = row.get(index).map_or("", String::as_str);
            let pad = width.saturating_sub(cell.chars().count());
            if index > 0 {
                line.push_str("  ");
            }
            if table.right[index] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_numbers_go_right() {
        let mut table = new(&["NODE", "STATUS", "FUEL"]);
        table.add_row(vec!["a".into(), "succeeded".into(), "12".into()]);
        table.add_row(vec!["long-name".into(), "failed".into(), "12345".into()]);
        align_right(&mut table, &[2]);
        let mut out = Vec::new();
        print(&mut out, &mut table).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NODE       STATUS      FUEL\n\
             a          succeeded     12\n\
             long-name  failed     12345\n"
        );
    }
}
