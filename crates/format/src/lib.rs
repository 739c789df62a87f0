//! How strata prints things the way the Docker CLI does: Go templates for `--format` and
//! `inspect -f` ([`Template`]), Go's tabwriter alignment and Docker's tables ([`Table`],
//! [`ListFormat`]), and Docker's human strings for sizes and durations ([`human_size`],
//! [`human_duration`]), and timestamps as Go prints them ([`Timestamp`]). Pure: output goes
//! to `String`s.

mod human;
mod table;
mod template;
mod time;

pub use human::{
    bytes_size, display_width, ellipsis, go_format_g, history_created_by, human_ago,
    human_duration, human_size, human_size_4, human_size_with_precision, humanize_bytes, short_id,
};
pub use table::{tabwriter, ListFormat, Table, MIN_WIDTH, PADDING};
pub use template::{docker_zero_fields, go_title, render, Template, TemplateError, ZeroFields};
pub use time::Timestamp;
