//! How strata prints things the way the Docker CLI does: Go templates for `--format` and
//! `inspect -f` ([`Template`]), Go's tabwriter alignment and Docker's tables ([`Table`],
//! [`ListFormat`]), and Docker's human strings for sizes and durations ([`human_size`],
//! [`human_duration`]). Pure: output goes to `String`s.

mod template;

pub use template::{docker_zero_fields, go_title, render, Template, TemplateError, ZeroFields};
