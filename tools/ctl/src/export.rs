//! `sentra-ctl events export`: an analyst's copy of a context's event history, read through the
//! public `ReadEvents` API (so the caller's rights, tenant and redaction apply) and written as
//! NDJSON, CSV or Parquet in constant memory.
//!
//! Resumable: the output itself says how far it got. NDJSON and CSV files are appended to after
//! the last complete line (a line cut by a crash is dropped first); Parquet output is a directory
//! of part files whose footers record the last position written, and a part without a footer (cut
//! by a crash) is deleted and read again.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use prost_reflect::{DescriptorPool, DynamicMessage};
use sentra_event_store::Cursor;
use sentra_proto::sentra::analytics::v1 as apb;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use tonic::transport::Channel;

/// Footer key of a Parquet part: the position of its last event.
const LAST_POSITION: &str = "sentra.last_position";
/// Events per Parquet part file: a crash loses at most one part's work.
const PART_ROWS: usize = 250_000;
/// Rows per Parquet row group (what the writer holds in memory).
const ROW_GROUP_ROWS: usize = 65_536;
/// How much of a text file's end is searched for its last complete line.
const TAIL: u64 = 8 << 20;
/// The CSV header, in column order.
const COLUMNS: [&str; 11] = [
    "position",
    "context",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "record_time",
    "event_id",
    "payload_type",
    "payload",
    "redacted",
];

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line; the payload as the proto JSON mapping.
    Ndjson,
    /// RFC 4180 with a header row; the payload as a JSON string.
    Csv,
    /// A directory of Parquet part files (Snappy); the payload as a JSON string column.
    Parquet,
}

/// What to export (the flags of `sentra-ctl events export`).
#[derive(Debug, Clone)]
pub struct Export {
    /// The gateway or the context's service, `http://host:port`.
    pub url: String,
    /// A bearer token of a caller holding `analytics.events.read`.
    pub token: String,
    /// `sales` or `finance`.
    pub context: String,
    /// Output format.
    pub format: Format,
    /// Output file (NDJSON, CSV) or directory (Parquet).
    pub out: PathBuf,
    /// The server-side filters and the start position (`after`).
    pub query: apb::EventQuery,
    /// Stop after this position (inclusive).
    pub until: Option<Cursor>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

/// What an export did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Events written by this run.
    pub written: u64,
    /// Where the run started (empty: the beginning).
    pub resumed_after: String,
    /// The position of the last event in the output.
    pub last_position: String,
}

const USAGE: &str = "usage: sentra-ctl events export --url URL --context sales|finance --format ndjson|csv|parquet --out PATH \
[--token TOKEN (default $SENTRA_TOKEN)] [--aggregate-type T]... [--event-type T]... [--from RFC3339] [--to RFC3339] \
[--after POSITION] [--until POSITION]";

fn timestamp(flag: &str, value: &str) -> anyhow::Result<prost_types::Timestamp> {
    let at = chrono::DateTime::parse_from_rfc3339(value).with_context(|| format!("{flag}: not an RFC 3339 time"))?;
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or_default(),
    })
}

/// Parses a `ReadEvents` position for comparisons (the event store's resume token).
fn position(token: &str) -> Option<Cursor> {
    token.parse().ok()
}

impl Export {
    /// Parses the flags after `events export`.
    pub fn from_args(args: &[String]) -> anyhow::Result<Self> {
        let mut export = Export {
            url: String::new(),
            token: std::env::var("SENTRA_TOKEN").unwrap_or_default(),
            context: String::new(),
            format: Format::Ndjson,
            out: PathBuf::new(),
            query: apb::EventQuery::default(),
            until: None,
            progress: std::io::stderr().is_terminal(),
        };
        let mut format = None;
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args.next().with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
            match flag.as_str() {
                "--url" => export.url.clone_from(value),
                "--token" => export.token.clone_from(value),
                "--context" => export.context.clone_from(value),
                "--out" => export.out = PathBuf::from(value),
                "--format" => format = Some(value.as_str()),
                "--aggregate-type" => export.query.aggregate_types.push(value.clone()),
                "--event-type" => export.query.event_types.push(value.clone()),
                "--from" => export.query.recorded_from = Some(timestamp(flag, value)?),
                "--to" => export.query.recorded_to = Some(timestamp(flag, value)?),
                "--after" => export.query.after.clone_from(value),
                "--until" => export.until = Some(position(value).context("--until: not a position")?),
                _ => bail!("unknown flag {flag}\n{USAGE}"),
            }
        }
        export.format = match format {
            Some("ndjson") | None => Format::Ndjson,
            Some("csv") => Format::Csv,
            Some("parquet") => Format::Parquet,
            Some(other) => bail!("--format: {other:?} is not ndjson, csv or parquet"),
        };
        if export.url.is_empty() || export.out.as_os_str().is_empty() {
            bail!("--url and --out are required\n{USAGE}");
        }
        if !["sales", "finance"].contains(&export.context.as_str()) {
            bail!("--context: {:?} is not sales or finance\n{USAGE}", export.context);
        }
        if export.token.is_empty() {
            bail!("no token: pass --token or set SENTRA_TOKEN (an analyst's, owner's or admin's access token)");
        }
        Ok(export)
    }
}

/// One exported event, as every format writes it.
struct Row {
    position: String,
    context: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    record_time: Option<chrono::DateTime<chrono::Utc>>,
    event_id: String,
    payload_type: String,
    payload: serde_json::Value,
    redacted: bool,
}

/// Turns `Any` payloads into their proto JSON mapping with the contracts' descriptors.
struct Payloads {
    pool: DescriptorPool,
}

impl Payloads {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            pool: DescriptorPool::decode(sentra_proto::FILE_DESCRIPTOR_SET).context("the contracts' descriptors")?,
        })
    }

    fn row(&self, event: apb::Event) -> anyhow::Result<Row> {
        let (payload_type, payload) = match event.payload {
            Some(any) => {
                let name = any.type_url.rsplit('/').next().unwrap_or_default().to_owned();
                let descriptor = self
                    .pool
                    .get_message_by_name(&name)
                    .with_context(|| format!("unknown payload type {name} (a newer server? update sentra-ctl)"))?;
                let message = DynamicMessage::decode(descriptor, any.value.as_slice())
                    .with_context(|| format!("payload of event {} is not a valid {name}", event.event_id))?;
                (name, serde_json::to_value(&message)?)
            }
            None => (String::new(), serde_json::Value::Null),
        };
        let record_time = event
            .record_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or_default()));
        Ok(Row {
            position: event.position,
            context: event.context,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: i64::try_from(event.sequence).unwrap_or(i64::MAX),
            event_type: event.event_type,
            record_time,
            event_id: event.event_id,
            payload_type,
            payload,
            redacted: event.redacted,
        })
    }
}

/// A destination format.
trait Sink {
    fn write(&mut self, row: Row) -> anyhow::Result<()>;
    /// Hands everything written so far to the file (NDJSON and CSV: durable, and a resume
    /// starts after it).
    fn flush(&mut self) -> anyhow::Result<()>;
    /// Completes the output at the end of a run, successful or not.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.flush()
    }
}

/// Finds the last complete line of a text file, cutting off a partial one after it. `None` when
/// the file has no complete line.
fn last_line(path: &Path) -> anyhow::Result<Option<String>> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|&b| b == b'\n') else {
        if start > 0 {
            bail!("{}: no line end in its last {TAIL} bytes; not an export", path.display());
        }
        file.set_len(0)?;
        return Ok(None);
    };
    // Drop a line cut short by a crash.
    file.set_len(start + u64::try_from(end).unwrap_or_default() + 1)?;
    let begin = tail[..end].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if begin == 0 && start > 0 {
        bail!("{}: a line longer than {TAIL} bytes; not an export", path.display());
    }
    Ok(Some(String::from_utf8_lossy(&tail[begin..end]).into_owned()))
}

struct Ndjson(BufWriter<File>);

impl Ndjson {
    /// Opens `path` for appending; returns the position to resume after, if any.
    fn open(path: &Path) -> anyhow::Result<(Self, Option<String>)> {
        let resume = if path.exists() {
            match last_line(path)? {
                Some(line) => {
                    let value: serde_json::Value = serde_json::from_str(&line)
                        .with_context(|| format!("{}: the last line is not JSON", path.display()))?;
                    Some(value["position"].as_str().context("the last line has no position")?.to_owned())
                }
                None => None,
            }
        } else {
            None
        };
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((Self(BufWriter::with_capacity(1 << 20, file)), resume))
    }
}

impl Sink for Ndjson {
    fn write(&mut self, row: Row) -> anyhow::Result<()> {
        let line = serde_json::json!({
            "position": row.position,
            "context": row.context,
            "aggregate_type": row.aggregate_type,
            "aggregate_id": row.aggregate_id,
            "sequence": row.sequence,
            "event_type": row.event_type,
            "record_time": row.record_time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            "event_id": row.event_id,
            "payload_type": row.payload_type,
            "payload": row.payload,
            "redacted": row.redacted,
        });
        serde_json::to_writer(&mut self.0, &line)?;
        self.0.write_all(b"\n")?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_data()?;
        Ok(())
    }
}

struct Csv(csv::Writer<File>);

impl Csv {
    fn open(path: &Path) -> anyhow::Result<(Self, Option<String>)> {
        let mut resume = None;
        let mut fresh = true;
        if path.exists()
            && let Some(line) = last_line(path)?
        {
            fresh = false;
            let first = line.split(',').next().unwrap_or_default();
            if first != COLUMNS[0] {
                position(first).with_context(|| format!("{}: the last row has no position", path.display()))?;
                resume = Some(first.to_owned());
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut writer = csv::WriterBuilder::new().buffer_capacity(1 << 20).from_writer(file);
        if fresh {
            writer.write_record(COLUMNS)?;
        }
        Ok((Self(writer), resume))
    }
}

impl Sink for Csv {
    fn write(&mut self, row: Row) -> anyhow::Result<()> {
        let time = row.record_time.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)).unwrap_or_default();
        self.0.write_record([
            row.position.as_str(),
            &row.context,
            &row.aggregate_type,
            &row.aggregate_id,
            &row.sequence.to_string(),
            &row.event_type,
            &time,
            &row.event_id,
            &row.payload_type,
            &row.payload.to_string(),
            if row.redacted { "true" } else { "false" },
        ])?;
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        self.0.flush()?;
        self.0.get_ref().sync_data()?;
        Ok(())
    }
}

/// The Arrow schema of a Parquet part.
fn schema() -> Arc<Schema> {
    let text = |name| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        text("position"),
        text("context"),
        text("aggregate_type"),
        text("aggregate_id"),
        Field::new("sequence", DataType::Int64, false),
        text("event_type"),
        Field::new("record_time", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        text("event_id"),
        text("payload_type"),
        text("payload"),
        Field::new("redacted", DataType::Boolean, false),
    ]))
}

/// Column builders for the rows of one record batch.
#[derive(Default)]
struct Columns {
    text: [StringBuilder; 8],
    sequence: Int64Builder,
    record_time: TimestampMicrosecondBuilder,
    redacted: BooleanBuilder,
    rows: usize,
}

impl Columns {
    fn push(&mut self, row: Row) {
        let payload = row.payload.to_string();
        for (builder, value) in self.text.iter_mut().zip([
            row.position.as_str(),
            &row.context,
            &row.aggregate_type,
            &row.aggregate_id,
            &row.event_type,
            &row.event_id,
            &row.payload_type,
            &payload,
        ]) {
            builder.append_value(value);
        }
        self.sequence.append_value(row.sequence);
        self.record_time.append_option(row.record_time.map(|t| t.timestamp_micros()));
        self.redacted.append_value(row.redacted);
        self.rows += 1;
    }

    fn finish(&mut self, schema: &Arc<Schema>) -> anyhow::Result<RecordBatch> {
        let [position, context, aggregate_type, aggregate_id, event_type, event_id, payload_type, payload] =
            &mut self.text;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(position.finish()),
            Arc::new(context.finish()),
            Arc::new(aggregate_type.finish()),
            Arc::new(aggregate_id.finish()),
            Arc::new(self.sequence.finish()),
            Arc::new(event_type.finish()),
            Arc::new(self.record_time.finish().with_timezone("UTC")),
            Arc::new(event_id.finish()),
            Arc::new(payload_type.finish()),
            Arc::new(payload.finish()),
            Arc::new(self.redacted.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

struct Parquet {
    dir: PathBuf,
    schema: Arc<Schema>,
    next_part: u32,
    writer: Option<(ArrowWriter<File>, PathBuf, usize)>,
    columns: Columns,
    last_position: String,
}

impl Parquet {
    fn open(dir: &Path) -> anyhow::Result<(Self, Option<String>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"))
            })
            .collect();
        parts.sort();
        let (mut resume, mut next_part) = (None::<(Cursor, String)>, 0);
        for part in parts {
            let footer = File::open(&part)
                .ok()
                .and_then(|f| parquet::file::reader::SerializedFileReader::new(f).ok())
                .map(|r| parquet::file::reader::FileReader::metadata(&r).file_metadata().key_value_metadata().cloned());
            let last = footer.flatten().and_then(|kv| kv.into_iter().find(|k| k.key == LAST_POSITION)?.value);
            match last.as_deref().and_then(|p| position(p).map(|at| (at, p.to_owned()))) {
                Some((at, token)) => {
                    if resume.as_ref().is_none_or(|(seen, _)| at > *seen) {
                        resume = Some((at, token));
                    }
                    let number = part
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.trim_start_matches("part-").parse::<u32>().ok())
                        .unwrap_or_default();
                    next_part = next_part.max(number + 1);
                }
                // Cut by a crash before its footer: its events are read again.
                None => std::fs::remove_file(&part).with_context(|| format!("remove {}", part.display()))?,
            }
        }
        let parquet = Self {
            dir: dir.to_owned(),
            schema: schema(),
            next_part,
            writer: None,
            columns: Columns::default(),
            last_position: String::new(),
        };
        Ok((parquet, resume.map(|(_, token)| token)))
    }

    fn write_batch(&mut self) -> anyhow::Result<()> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let batch = self.columns.finish(&self.schema)?;
        if self.writer.is_none() {
            let path = self.dir.join(format!("part-{:06}.parquet", self.next_part));
            self.next_part += 1;
            let props = WriterProperties::builder()
                .set_compression(parquet::basic::Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
                .build();
            let file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
            self.writer = Some((ArrowWriter::try_new(file, self.schema.clone(), Some(props))?, path, 0));
        }
        if let Some((writer, _, rows)) = &mut self.writer {
            *rows += batch.num_rows();
            writer.write(&batch)?;
        }
        Ok(())
    }

    fn close_part(&mut self) -> anyhow::Result<()> {
        if let Some((mut writer, path, _)) = self.writer.take() {
            writer.append_key_value_metadata(KeyValue::new(LAST_POSITION.to_owned(), self.last_position.clone()));
            let file = writer.into_inner().with_context(|| format!("finish {}", path.display()))?;
            file.sync_all()?;
        }
        Ok(())
    }
}

impl Sink for Parquet {
    fn write(&mut self, row: Row) -> anyhow::Result<()> {
        self.last_position.clone_from(&row.position);
        self.columns.push(row);
        if self.columns.rows >= 8192 {
            self.write_batch()?;
        }
        if self.writer.as_ref().is_some_and(|(_, _, rows)| *rows >= PART_ROWS) {
            self.close_part()?;
        }
        Ok(())
    }

    /// Parquet parts become durable only when closed: a flush writes what is buffered, and only
    /// the end of the export closes the part (see [`PART_ROWS`]).
    fn flush(&mut self) -> anyhow::Result<()> {
        self.write_batch()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.write_batch()?;
        self.close_part()
    }
}

/// Runs an export to its end (the end of the feed, or `until`).
pub async fn export(export: &Export) -> anyhow::Result<Summary> {
    let (mut sink, resume): (Box<dyn Sink>, Option<String>) = match export.format {
        Format::Ndjson => {
            let (sink, resume) = Ndjson::open(&export.out)?;
            (Box::new(sink), resume)
        }
        Format::Csv => {
            let (sink, resume) = Csv::open(&export.out)?;
            (Box::new(sink), resume)
        }
        Format::Parquet => {
            let (sink, resume) = Parquet::open(&export.out)?;
            (Box::new(sink), resume)
        }
    };
    let result = run(export, sink.as_mut(), resume).await;
    // Complete what was written even when the stream failed: the next run resumes after it.
    let finished = sink.finish();
    let summary = result?;
    finished?;
    Ok(summary)
}

async fn run(export: &Export, sink: &mut dyn Sink, resume: Option<String>) -> anyhow::Result<Summary> {
    let mut query = export.query.clone();
    if let Some(after) = &resume {
        query.after.clone_from(after);
    }
    query.follow = false;
    let resumed_after = query.after.clone();
    let channel = Channel::from_shared(export.url.clone())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("connect to {}", export.url))?;
    let authorization: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", export.token).parse().context("the token is not a valid header value")?;
    fn with_auth<T>(
        message: T,
        authorization: &tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    ) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", authorization.clone());
        request
    }
    let mut batches: Box<dyn streams::BatchStream> = match export.context.as_str() {
        "sales" => {
            let stream = SalesServiceClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .read_events(with_auth(spb::ReadEventsRequest { query: Some(query) }, &authorization))
                .await?
                .into_inner();
            Box::new(streams::Sales(stream))
        }
        _ => {
            let stream = FinanceServiceClient::new(channel)
                .max_decoding_message_size(64 << 20)
                .read_events(with_auth(fpb::ReadEventsRequest { query: Some(query) }, &authorization))
                .await?
                .into_inner();
            Box::new(streams::Finance(stream))
        }
    };

    let payloads = Payloads::new()?;
    let bar = if export.progress { indicatif::ProgressBar::new_spinner() } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {human_pos} events {per_sec} {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let started = Instant::now();
    let mut written = 0u64;
    let mut last_position = resumed_after.clone();
    'read: while let Some(batch) = batches.next_batch().await? {
        for event in batch.events {
            if export.until.is_some_and(|until| position(&event.position).is_some_and(|at| at > until)) {
                break 'read;
            }
            last_position.clone_from(&event.position);
            sink.write(payloads.row(event)?)?;
            written += 1;
        }
        sink.flush()?;
        bar.set_position(written);
        bar.set_message(last_position.clone());
        if batch.caught_up {
            break;
        }
    }
    bar.finish_and_clear();
    if export.progress {
        let rate = written as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprintln!("{written} events written to {} ({rate:.0} events/s)", export.out.display());
    }
    Ok(Summary { written, resumed_after, last_position })
}

/// The two contexts' streams behind one interface.
mod streams {
    use sentra_proto::sentra::analytics::v1::EventBatch;
    use sentra_proto::sentra::{finance::v1 as fpb, sales::v1 as spb};
    use tonic::Streaming;

    /// The next batch of a `ReadEvents` stream (`None` at its end).
    #[tonic::async_trait]
    pub trait BatchStream: Send {
        async fn next_batch(&mut self) -> Result<Option<EventBatch>, tonic::Status>;
    }

    pub struct Sales(pub Streaming<spb::ReadEventsResponse>);
    pub struct Finance(pub Streaming<fpb::ReadEventsResponse>);

    #[tonic::async_trait]
    impl BatchStream for Sales {
        async fn next_batch(&mut self) -> Result<Option<EventBatch>, tonic::Status> {
            Ok(self.0.message().await?.map(|m| m.batch.unwrap_or_default()))
        }
    }

    #[tonic::async_trait]
    impl BatchStream for Finance {
        async fn next_batch(&mut self) -> Result<Option<EventBatch>, tonic::Status> {
            Ok(self.0.message().await?.map(|m| m.batch.unwrap_or_default()))
        }
    }
}
