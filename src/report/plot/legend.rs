//! Legends: a boxed column of entries beside a plot, or one centred row under a title.

use plotters::prelude::*;

use super::canvas::{Canvas, DrawResult};
use super::text::{text_width, Align, Txt, Valign};
use super::{BORDER_GRAY, LEGEND_SIZE, TEXT_GRAY};

/// How a legend entry is marked.
#[derive(Clone, Copy)]
pub(super) enum Mark {
    Line(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
}

const LEGEND_ROW: i32 = 20;
/// More legend entries than this could not fit any figure; the rest are dropped.
const MAX_LEGEND: usize = 200;
pub(super) const LEGEND_SWATCH: i32 = 22;
/// Size of the grey note at the end of a legend row.
pub(super) const NOTE_SIZE: f64 = 12.0;

/// The entries in order of first appearance, each label once; empty labels are left out.
pub(super) fn distinct<'l>(
    entries: impl IntoIterator<Item = (&'l str, Mark)>,
) -> Vec<(String, Mark)> {
    let mut out: Vec<(String, Mark)> = Vec::new();
    for (label, mark) in entries {
        if !label.is_empty() && !out.iter().any(|(l, _)| l == label) {
            out.push((label.to_string(), mark));
        }
    }
    out
}

/// Width and height of a legend box, including its title row when it has one.
pub(super) fn legend_box_size(title: Option<&str>, entries: &[(String, Mark)]) -> (i32, i32) {
    let tw = entries
        .iter()
        .map(|(l, _)| text_width(l, LEGEND_SIZE) + LEGEND_SWATCH + 22)
        .max()
        .unwrap_or(0);
    let title_w = title.map_or(0, |t| text_width(t, LEGEND_SIZE) + 14);
    let rows = entries.len().min(MAX_LEGEND) as i32 + i32::from(title.is_some());
    (tw.max(title_w), rows * LEGEND_ROW + 8)
}

/// Width of the panel beside a plot that holds an untitled legend and grey notes under it: the
/// wider of the legend box and the widest note, at most `max` pixels.
pub(super) fn side_panel_width(entries: &[(String, Mark)], notes: &[String], max: i32) -> i32 {
    let notes_w = notes
        .iter()
        .map(|t| text_width(t, NOTE_SIZE))
        .max()
        .unwrap_or(0);
    legend_box_size(None, entries).0.max(notes_w).min(max)
}

fn draw_mark(c: &Canvas, mark: Mark, x: i32, cy: i32) -> DrawResult<()> {
    match mark {
        Mark::Line(col) => c.root.draw(&PathElement::new(
            vec![(x, cy), (x + LEGEND_SWATCH, cy)],
            col.stroke_width(2),
        ))?,
        Mark::Dashed(col) => {
            for x0 in [x, x + 13] {
                c.root.draw(&PathElement::new(
                    vec![(x0, cy), (x0 + 9, cy)],
                    col.stroke_width(2),
                ))?;
            }
        }
        Mark::Dot(col) => {
            c.root
                .draw(&Circle::new((x + LEGEND_SWATCH / 2, cy), 4, col.filled()))?
        }
    }
    Ok(())
}

/// A vertical legend box with its top-left corner at page pixel (x, y), under an optional title
/// that says what the entries are (e.g. "digit" over the class colours).
pub(super) fn draw_legend(
    c: &mut Canvas,
    (x, y): (i32, i32),
    title: Option<&str>,
    entries: &[(String, Mark)],
) -> DrawResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let (w, h) = legend_box_size(title, entries);
    c.root.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        WHITE.mix(0.9).filled(),
    ))?;
    c.root
        .draw(&Rectangle::new([(x, y), (x + w, y + h)], BORDER_GRAY))?;
    let mut top = y + 4;
    if let Some(t) = title {
        let txt = Txt::new(LEGEND_SIZE, Align::Left, Valign::Middle).color(TEXT_GRAY);
        c.text(t, (x + 7, top + LEGEND_ROW / 2), txt);
        top += LEGEND_ROW;
    }
    for (k, (label, mark)) in entries.iter().take(MAX_LEGEND).enumerate() {
        let cy = top + k as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        draw_mark(c, *mark, x + 7, cy)?;
        let t = Txt::new(LEGEND_SIZE, Align::Left, Valign::Middle);
        c.text(label, (x + LEGEND_SWATCH + 14, cy), t);
    }
    Ok(())
}

/// A one-line legend centred on `cx` at vertical centre `cy`, followed by a grey note.
pub(super) fn draw_legend_row(
    c: &mut Canvas,
    (cx, cy): (i32, i32),
    entries: &[(String, Mark)],
    note: &str,
) -> DrawResult<()> {
    const GAP: i32 = 26;
    let widths: Vec<i32> = entries
        .iter()
        .map(|(l, _)| LEGEND_SWATCH + 7 + text_width(l, LEGEND_SIZE))
        .collect();
    let note_w = text_width(note, NOTE_SIZE);
    let total = widths.iter().map(|w| w + GAP).sum::<i32>() + note_w;
    let mut x = cx - total / 2;
    for ((label, mark), w) in entries.iter().zip(&widths) {
        draw_mark(c, *mark, x, cy)?;
        let t = Txt::new(LEGEND_SIZE, Align::Left, Valign::Middle);
        c.text(label, (x + LEGEND_SWATCH + 7, cy), t);
        x += w + GAP;
    }
    let t = Txt::new(NOTE_SIZE, Align::Left, Valign::Middle).color(TEXT_GRAY);
    c.text(note, (x, cy), t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_distinct_and_boxes_fit_them() {
        let e = distinct([
            ("p", Mark::Line(BLACK)),
            ("q", Mark::Dot(BLACK)),
            ("", Mark::Line(BLACK)),
            ("p", Mark::Dashed(BLACK)),
        ]);
        let labels: Vec<&str> = e.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["p", "q"]);
        let (w, h) = legend_box_size(None, &e);
        let (wt, ht) = legend_box_size(Some("a much longer legend title"), &e);
        assert_eq!(ht, h + LEGEND_ROW);
        assert!(wt > w && w > text_width("p", LEGEND_SIZE) + LEGEND_SWATCH);
    }
}
