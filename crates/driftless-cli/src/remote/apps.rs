//! `driftless status` without an App: the selected Apps, read from the server a
//! page at a time and printed as each page arrives, so the list of a server with
//! many Apps is never held whole.

use std::io::Write;

use driftless_api::UnixMillis;
use driftless_api::list::{AppFilter, AppList, DEFAULT_APP_PAGE};
use serde::ser::{SerializeSeq as _, Serializer as _};

use super::client::{Client, RemoteError};
use super::view::{self, AppTable};

/// Apps asked for per request.
const PAGE: usize = DEFAULT_APP_PAGE;

/// The pages of the App list, at most `limit` Apps in all.
pub struct Pages<'a> {
    client: &'a Client,
    filter: &'a AppFilter,
    /// Apps still wanted; `None`: every one.
    left: Option<usize>,
    /// The token of the next page, once a page said there is one.
    next: Option<String>,
    started: bool,
    /// Selected Apps left out because of the limit.
    cut: u64,
}

impl<'a> Pages<'a> {
    /// The pages of the Apps `filter` selects, `limit` Apps at most.
    pub fn new(client: &'a Client, filter: &'a AppFilter, limit: Option<usize>) -> Self {
        Self {
            client,
            filter,
            left: limit,
            next: None,
            started: false,
            cut: 0,
        }
    }

    /// The next page; `None` after the last, or once the limit is reached.
    pub async fn next(&mut self) -> Result<Option<AppList>, RemoteError> {
        if (self.started && self.next.is_none()) || self.left == Some(0) {
            return Ok(None);
        }
        let size = self.left.map_or(PAGE, |left| left.min(PAGE));
        let page = self
            .client
            .apps(self.filter, size, self.next.as_deref())
            .await?;
        self.started = true;
        // A page without Apps ends the list, whatever its token says.
        self.next = page.continue_.clone().filter(|_| !page.items.is_empty());
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(page.items.len());
            if *left == 0 {
                self.cut = page.remaining;
            }
        }
        Ok(Some(page))
    }

    /// Selected Apps the limit left out.
    pub fn cut(&self) -> u64 {
        self.cut
    }
}

/// Prints the summary line, then the table of the Apps, page by page, then
/// what the limit left out and the warnings of held Apps.
pub async fn print_table(
    mut pages: Pages<'_>,
    now: UnixMillis,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let filtered = !pages.filter.is_empty();
    let mut table = AppTable::new(now);
    let mut first = true;
    while let Some(page) = pages.next().await? {
        if first {
            first = false;
            out.write_all(view::app_summary(&page.summary, filtered).as_bytes())?;
        }
        if !page.items.is_empty() {
            out.write_all(table.page(&page.items).as_bytes())?;
        }
        out.flush()?;
    }
    if pages.cut() > 0 {
        let more = pages.cut();
        let apps = if more == 1 { "App" } else { "Apps" };
        writeln!(out, "... {more} more {apps} (raise --limit to list them)")?;
    }
    out.write_all(table.warnings().as_bytes())?;
    Ok(())
}

/// Prints the Apps as one JSON array, page by page.
pub async fn print_json(mut pages: Pages<'_>, out: &mut impl Write) -> anyhow::Result<()> {
    {
        let mut json = serde_json::Serializer::pretty(&mut *out);
        let mut array = json.serialize_seq(None)?;
        while let Some(page) = pages.next().await? {
            for app in &page.items {
                array.serialize_element(app)?;
            }
        }
        array.end()?;
    }
    out.write_all(b"\n")?;
    Ok(())
}
