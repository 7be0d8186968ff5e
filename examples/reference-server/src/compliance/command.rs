//! `reports mifid`: a period's transaction reports written to a file, with a progress bar.

use std::io::Write;
use std::path::PathBuf;

use finsec_compliance::mifid::ReportFilter;
use finsec_compliance::mifid::xml::AppHeader;
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{FileWriter, FirmConfig};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::storage::Storage;

/// Report operations for operators, on the same database as a running server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportsCommand {
    /// Write the MiFIR transaction reports of trades in `[--from, --to)` to a file: ISO
    /// 20022 auth.016 XML (with the firm configuration's LEI and competent authority in the
    /// header) or CSV. The file appears complete or not at all.
    Mifid {
        /// Trades at or after this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        from: OffsetDateTime,
        /// Trades before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        to: OffsetDateTime,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// `xml` (default) or `csv`.
        #[arg(long, default_value = "xml", value_parser = ["xml", "csv"])]
        format: String,
    },
}

fn parse_time(text: &str) -> std::result::Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| "an RFC 3339 time".to_owned())
}

/// Runs a `reports` command: prints what it wrote to `out`.
///
/// # Errors
/// [`ServerError::Config`] without a firm configuration (XML), for an empty XML period or
/// an unwritable file; storage failures.
pub async fn run_command(
    config: &Config,
    command: &ReportsCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let storage = Storage::open(config).await?;
    let result = run_on(config, &storage, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    config: &Config,
    storage: &Storage,
    command: &ReportsCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let ReportsCommand::Mifid {
        from,
        to,
        out: path,
        format,
    } = command;
    if from >= to {
        return Err(ServerError::Config("--from must be before --to".to_owned()));
    }
    crate::capabilities::migrate(storage).await?;
    let reports = super::report_store(storage);
    let filter = ReportFilter {
        from: Some(*from),
        to: Some(*to),
        ..ReportFilter::default()
    };
    let failed = |what: &str| {
        let what = what.to_owned();
        move |e: finsec_compliance::Error| ServerError::Config(format!("{what}: {e}"))
    };
    let total = reports
        .count(&filter)
        .await
        .map_err(failed("counting reports"))?;
    let csv = format == "csv";
    if total == 0 && !csv {
        return Err(ServerError::Config(
            "no report in the period: an auth.016 file holds at least one".to_owned(),
        ));
    }
    let tmp = path.with_extension("partial");
    let io = |e: std::io::Error| ServerError::io("writing", tmp.clone(), e);
    let file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} reports, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut written = 0u64;
    let mut after = 0;
    let write_all = async {
        let mut w = if csv {
            FileWriter::csv(file).map_err(failed("csv"))?
        } else {
            let firm_path = config.compliance.firm_config.as_deref().ok_or_else(|| {
                ServerError::Config("XML needs the firm configuration (--firm-config)".to_owned())
            })?;
            let firm = FirmConfig::load(firm_path)?;
            let header = AppHeader::new(
                firm.lei,
                firm.authority,
                super::routes::message_id(*from),
                OffsetDateTime::now_utc(),
            )
            .map_err(failed("header"))?;
            FileWriter::xml(file, &header).map_err(failed("xml"))?
        };
        loop {
            let page = reports
                .query(&filter, after, 1000)
                .await
                .map_err(failed("reading"))?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                w.write(&r.report).map_err(failed("writing"))?;
                written += 1;
                bar.inc(1);
            }
        }
        w.finish().map_err(failed("finishing"))
    };
    let mut file = match write_all.await {
        Ok(file) => file,
        Err(e) => {
            bar.abandon();
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    bar.finish_and_clear();
    file.flush().map_err(io)?;
    file.get_ref().sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| ServerError::io("renaming to", path, e))?;
    writeln!(out, "wrote {written} report records to {}", path.display())
        .map_err(|e| ServerError::io("writing to", std::path::Path::new("stdout"), e))
}
