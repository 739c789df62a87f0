//! Go templates as the Docker CLI evaluates them for `--format` and `inspect -f`: Go's
//! `text/template` (through the `gotmpl` crate) with the CLI's functions `json`, `split`,
//! `join`, `title`, `lower`, `upper`, `pad` and `truncate`, over data given as
//! `serde_json::Value`.
//!
//! Two things make a JSON value behave like the Go structs Docker templates run on:
//! - `json` writes objects in the key order of the input (Go struct field order) rather than
//!   the sorted order of the template engine's maps, using an order table recorded while the
//!   data is converted;
//! - fields that Docker's structs have but omit from JSON when empty (`Healthcheck`,
//!   `ExposedPorts`, `Variant`, …) are added as zero values, so `{{if .Config.Healthcheck}}`
//!   is false instead of a missing-key error, yet `json` still leaves them out.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use gotmpl::{MissingKey, Value};
use serde_json::Value as Json;

/// A template that failed to parse or to execute. The message starts like Docker's:
/// `template parsing error: …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct TemplateError(pub String);

/// Object key order recorded per distinct key set: sorted keys → keys to write, in order.
type OrderTable = HashMap<Vec<Arc<str>>, Vec<Arc<str>>>;

/// What `json` needs to know about the current execution.
#[derive(Default)]
struct State {
    orders: OrderTable,
    /// The data the template runs on, when it is a row of a list command.
    row: Option<Value>,
    nils: Nils,
}

/// A struct whose empty `omitempty` fields Docker leaves out of its JSON, recognised by
/// keys that only it has; `fields` are the omissible fields with their Go zero values.
#[derive(Debug, Clone)]
pub struct ZeroFields {
    pub marker_keys: Vec<&'static str>,
    pub fields: Vec<(&'static str, Json)>,
}

/// The omissible fields of the structs `docker inspect` (image) templates run on:
/// `container.Config`, `types.ImageInspect`, its `RootFS` and `HealthConfig`.
pub fn docker_zero_fields() -> Vec<ZeroFields> {
    vec![
        ZeroFields {
            marker_keys: vec!["Hostname", "Domainname", "AttachStdin", "OpenStdin"],
            fields: vec![
                ("ExposedPorts", Json::Null),
                ("Healthcheck", Json::Null),
                ("ArgsEscaped", Json::Bool(false)),
                ("NetworkDisabled", Json::Bool(false)),
                ("MacAddress", Json::String(String::new())),
                ("StopSignal", Json::String(String::new())),
                ("StopTimeout", Json::Null),
                ("Shell", Json::Null),
            ],
        },
        ZeroFields {
            marker_keys: vec!["Id", "RepoTags", "RepoDigests", "GraphDriver"],
            fields: vec![
                ("Variant", Json::String(String::new())),
                ("OsVersion", Json::String(String::new())),
            ],
        },
        ZeroFields {
            marker_keys: vec!["Type"],
            fields: vec![
                ("Layers", Json::Null),
                ("BaseLayer", Json::String(String::new())),
            ],
        },
        ZeroFields {
            marker_keys: vec!["Test"],
            fields: vec![
                ("Interval", Json::from(0)),
                ("Timeout", Json::from(0)),
                ("StartPeriod", Json::from(0)),
                ("Retries", Json::from(0)),
            ],
        },
        // `container.HostConfig`'s `omitempty` fields.
        ZeroFields {
            marker_keys: vec!["ContainerIDFile", "LogConfig", "VolumeDriver"],
            fields: vec![
                ("StorageOpt", Json::Null),
                ("Tmpfs", Json::Null),
                ("Sysctls", Json::Null),
                ("Mounts", Json::Null),
                ("Init", Json::Null),
            ],
        },
    ]
}

/// A parsed template, ready to run on many values (one per row of a list).
pub struct Template {
    inner: gotmpl::Template,
    /// The same template printing `<no value>` for a missing key, as Go does for a key
    /// missing from a map (Docker's first, typed evaluation), made when the template reads
    /// a field of one of Docker's maps (see [`GO_MAPS`]).
    lenient: Option<Box<Template>>,
    /// The source, to tell which field a missing key was asked of.
    src: String,
    state: Arc<RwLock<State>>,
    zero_fields: Vec<ZeroFields>,
    list_rows: bool,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template").finish_non_exhaustive()
    }
}

impl Template {
    /// Parses `src` with Docker's functions. Missing keys are errors, as in Docker's fallback
    /// evaluation of `inspect -f` (`map has no entry for key`).
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        Self::build(src, false)
    }

    /// Parses `src` for a table header: the same template where `json`, `split`, `join`,
    /// `title`, `lower`, `upper` and `truncate` return their first argument unchanged
    /// (Docker's `HeaderFunctions`), run on a map of field name → column title.
    pub fn parse_header(src: &str) -> Result<Self, TemplateError> {
        Self::build(src, true)
    }

    fn build(src: &str, header: bool) -> Result<Self, TemplateError> {
        let mut t = Self::build_with(src, header, MissingKey::Error)?;
        if GO_MAPS.iter().any(|m| src.contains(&format!(".{m}."))) {
            t.lenient = Some(Box::new(Self::build_with(
                src,
                header,
                MissingKey::Invalid,
            )?));
        }
        Ok(t)
    }

    fn build_with(src: &str, header: bool, missing: MissingKey) -> Result<Self, TemplateError> {
        let state: Arc<RwLock<State>> = Arc::default();
        let mut t = gotmpl::Template::new(ROOT_NAME).missing_key(missing);
        if header {
            for name in [
                "json", "split", "join", "title", "lower", "upper", "truncate",
            ] {
                t = t.func(name, |args| Ok(args.first().cloned().unwrap_or(Value::Nil)));
            }
        } else {
            let o = Arc::clone(&state);
            t = t
                .func("json", move |args| json_fn(args, &o))
                .func("split", split_fn)
                .func("join", join_fn)
                .func("title", |a| str_fn(a, "title", go_title))
                .func("lower", |a| str_fn(a, "lower", |s| s.to_lowercase()))
                .func("upper", |a| str_fn(a, "upper", |s| s.to_uppercase()))
                .func("truncate", truncate_fn);
        }
        t = t.func("pad", pad_fn);
        t = t.func("index", index_fn);
        let inner = t.parse(src).map_err(go_error)?;
        check_functions(&inner)?;
        Ok(Template {
            inner,
            lenient: None,
            src: src.to_string(),
            state,
            zero_fields: docker_zero_fields(),
            list_rows: false,
        })
    }

    /// Marks the data as rows of a list command (`images`, `history`, …): there `{{json .}}`
    /// goes through the row context's `MarshalJSON`, which sorts keys and escapes HTML
    /// (`"\u003cnone\u003e"`), unlike `json` of a single field.
    pub fn list_rows(mut self) -> Self {
        self.list_rows = true;
        self.lenient = self.lenient.map(|l| Box::new(l.list_rows()));
        self
    }

    /// Replaces the table of omissible struct fields (default: [`docker_zero_fields`]).
    pub fn with_zero_fields(mut self, z: Vec<ZeroFields>) -> Self {
        self.lenient = self
            .lenient
            .map(|l| Box::new(l.with_zero_fields(z.clone())));
        self.zero_fields = z;
        self
    }

    /// Runs the template on `data` and returns what it printed.
    pub fn render(&self, data: &Json) -> Result<String, TemplateError> {
        let nils = match self.state.read() {
            Ok(st) => st.nils.clone(),
            Err(_) => return Err(TemplateError("template: poisoned state".into())),
        };
        let mut conv = Converter {
            zeros: &self.zero_fields,
            nils: &nils,
            table: OrderTable::new(),
        };
        let v = conv.value(data);
        if let Ok(mut st) = self.state.write() {
            st.orders = conv.table;
            st.row = if self.list_rows {
                Some(v.clone())
            } else {
                None
            };
        }
        match self.inner.execute_to_string(&v) {
            Err(gotmpl::TemplateError::MissingKey { key }) if self.asks_map(&key) => self
                .lenient
                .as_ref()
                .map(|l| l.render(data))
                .unwrap_or_else(|| Err(go_error(gotmpl::TemplateError::MissingKey { key }))),
            r => r.map_err(go_error),
        }
    }

    /// Whether the template reads `key` as a field of one of Docker's maps (`.Labels.key`).
    fn asks_map(&self, key: &str) -> bool {
        self.lenient.is_some()
            && GO_MAPS.iter().any(|m| {
                let pat = format!(".{m}.{key}");
                self.src.match_indices(&pat).any(|(i, _)| {
                    !self.src[i + pat.len()..]
                        .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
    }
}

/// Fields of Docker's inspect structs that are Go maps: a key missing there prints
/// `<no value>`, where a missing struct field is an error.
const GO_MAPS: &[&str] = &[
    "Labels",
    "Data",
    "Ports",
    "Networks",
    "ExposedPorts",
    "Volumes",
    "PortBindings",
    "Tmpfs",
    "Sysctls",
    "StorageOpt",
    "DriverOpts",
    "Options",
    "Attributes",
    "Annotations",
];

/// Name of the root template: named so that its parse tree can be walked (an unnamed root
/// is not listed by the engine), with a name no `{{define}}` will use.
const ROOT_NAME: &str = "\u{0}root";

/// Functions a template may call: Go's builtins and the CLI's.
const KNOWN_FUNCTIONS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne", "json", "split", "join", "title",
    "lower", "upper", "pad", "truncate",
];

/// Go checks function names when it parses (`function "table" not defined`), before any
/// data is seen; the engine only notices when it executes. Walk the parse trees instead.
fn check_functions(t: &gotmpl::Template) -> Result<(), TemplateError> {
    use gotmpl::parse::{Expr, ListNode, Node, PipeNode};

    fn pipe(p: &PipeNode) -> Result<(), TemplateError> {
        for c in &p.commands {
            for a in &c.args {
                expr(a)?;
            }
        }
        Ok(())
    }
    fn expr(e: &Expr) -> Result<(), TemplateError> {
        match e {
            Expr::Identifier(pos, name) if !KNOWN_FUNCTIONS.contains(&name.as_str()) => {
                Err(TemplateError(format!(
                    "template: :{}: function {:?} not defined",
                    pos.line,
                    name.as_str()
                )))
            }
            Expr::Pipe(_, p) => pipe(p),
            Expr::Chain(_, inner, _) => expr(inner),
            _ => Ok(()),
        }
    }
    fn list(l: &ListNode) -> Result<(), TemplateError> {
        for n in &l.nodes {
            match n {
                Node::List(l) => list(l)?,
                Node::Action(a) => pipe(&a.pipe)?,
                Node::If(b) | Node::Range(b) | Node::With(b) => {
                    pipe(&b.pipe)?;
                    list(&b.body)?;
                    if let Some(e) = &b.else_body {
                        list(e)?;
                    }
                }
                Node::Template(t) => {
                    if let Some(p) = &t.pipe {
                        pipe(p)?;
                    }
                }
                Node::Define(d) => list(&d.body)?,
                Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
            }
        }
        Ok(())
    }
    for name in t.templates() {
        if let Some(l) = t.lookup(name) {
            list(l)?;
        }
    }
    Ok(())
}

/// Words an engine error as Go's `text/template` does (Docker passes Go's text through);
/// positions inside a line are not known for execution errors, so they are left out.
fn go_error(e: gotmpl::TemplateError) -> TemplateError {
    use gotmpl::TemplateError as E;
    TemplateError(match e {
        E::Parse { line, message, .. } | E::Lex { line, message, .. } => {
            format!("template: :{line}: {message}")
        }
        E::UndefinedFunction(name) => format!("template: :1: function {name:?} not defined"),
        E::MissingKey { key } => {
            format!("template: executing \"\": map has no entry for key {key:?}")
        }
        E::Exec(msg) => format!("template: executing \"\": {msg}"),
        E::IndexOutOfRange { index } => {
            format!("template: executing \"\": error calling index: index out of range: {index}")
        }
        other => format!("template: executing \"\": {other}"),
    })
}

/// Go's `index`, with the zero value for a missing key of a `map[string]string` (`""`)
/// rather than "no value": Docker's label maps are such maps.
fn index_fn(args: &[Value]) -> gotmpl::Result<Value> {
    let Some((first, keys)) = args.split_first() else {
        return Err(exec_err(
            "wrong number of args for index: want at least 1 got 0",
        ));
    };
    let mut cur = first.clone();
    for k in keys {
        cur = match (&cur, k) {
            (Value::Map(m), Value::String(key)) => match m.get(key) {
                Some(v) => v.clone(),
                None if m.values().all(|v| matches!(v, Value::String(_))) => {
                    Value::String(Arc::from(""))
                }
                None => Value::Nil,
            },
            (Value::Nil, Value::String(_)) => Value::String(Arc::from("")),
            (Value::List(l), i) => {
                let n = match i {
                    Value::Int(n) => *n,
                    Value::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
                    other => {
                        return Err(exec_err(&format!(
                            "error calling index: cannot index slice/array with type {other}"
                        )))
                    }
                };
                match usize::try_from(n).ok().and_then(|n| l.get(n)) {
                    Some(v) => v.clone(),
                    None => {
                        return Err(exec_err(&format!(
                            "error calling index: index out of range: {n}"
                        )))
                    }
                }
            }
            (Value::String(s), Value::Int(n)) => {
                match usize::try_from(*n).ok().and_then(|n| s.as_bytes().get(n)) {
                    Some(b) => Value::Int(i64::from(*b)),
                    None => {
                        return Err(exec_err(&format!(
                            "error calling index: index out of range: {n}"
                        )))
                    }
                }
            }
            (c, k) => {
                return Err(exec_err(&format!(
                    "error calling index: can't index item of type {c} with {k}"
                )))
            }
        };
    }
    Ok(cur)
}

impl Template {
    /// Runs the template on any serialisable value (e.g. `oci::ImageInspect`), seen through
    /// its JSON form.
    pub fn render_serialize<T: serde::Serialize + ?Sized>(
        &self,
        data: &T,
    ) -> Result<String, TemplateError> {
        let v = serde_json::to_value(data)
            .map_err(|e| TemplateError(format!("template: cannot represent data: {e}")))?;
        self.render(&v)
    }
}

/// Parses and runs `src` on `data` once.
pub fn render(src: &str, data: &Json) -> Result<String, TemplateError> {
    Template::parse(src)?.render(data)
}

/// Keys whose `null` is a nil Go slice in Docker's structs: printed `[]`, `len` 0.
const NIL_SLICE_KEYS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "OnBuild",
    "Shell",
    "RepoTags",
    "RepoDigests",
    "Layers",
    "Test",
];
/// Keys whose `null` is a nil Go map in Docker's structs: printed `map[]`.
const NIL_MAP_KEYS: &[&str] = &["Volumes", "Labels", "ExposedPorts", "Data", "Options"];

/// Shared empty values that stand for Go's nil slices and maps: they behave as empty in the
/// template, and `json` recognises them by identity and writes `null`, as Go does.
#[derive(Clone)]
struct Nils {
    list: Arc<[Value]>,
    map: Arc<BTreeMap<Arc<str>, Value>>,
}

impl Default for Nils {
    fn default() -> Self {
        Nils {
            list: Arc::from(Vec::new()),
            map: Arc::new(BTreeMap::new()),
        }
    }
}

/// Converts JSON to the template engine's values, adding Docker's omitted zero fields and
/// recording each object's key order (without the added fields) for `json`.
struct Converter<'a> {
    zeros: &'a [ZeroFields],
    nils: &'a Nils,
    table: OrderTable,
}

impl Converter<'_> {
    fn field(&mut self, key: &str, v: &Json) -> Value {
        match v {
            Json::Null if NIL_SLICE_KEYS.contains(&key) => Value::List(Arc::clone(&self.nils.list)),
            Json::Null if NIL_MAP_KEYS.contains(&key) => Value::Map(Arc::clone(&self.nils.map)),
            _ => self.value(v),
        }
    }

    fn value(&mut self, v: &Json) -> Value {
        match v {
            Json::Null => Value::Nil,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Value::Uint(u)
                } else {
                    Value::Float(n.as_f64().unwrap_or(0.0))
                }
            }
            Json::String(s) => Value::String(Arc::from(s.as_str())),
            Json::Array(a) => {
                Value::List(a.iter().map(|x| self.value(x)).collect::<Vec<_>>().into())
            }
            Json::Object(m) => {
                let order: Vec<Arc<str>> = m.keys().map(|k| Arc::from(k.as_str())).collect();
                let mut out: BTreeMap<Arc<str>, Value> = BTreeMap::new();
                for (k, x) in m {
                    let v = self.field(k, x);
                    out.insert(Arc::from(k.as_str()), v);
                }
                let zeros = self.zeros;
                for z in zeros {
                    if z.marker_keys.iter().all(|k| m.contains_key(*k)) {
                        for (k, zero) in &z.fields {
                            if !m.contains_key(*k) {
                                let v = self.field(k, zero);
                                out.insert(Arc::from(*k), v);
                            }
                        }
                    }
                }
                let sorted: Vec<Arc<str>> = out.keys().cloned().collect();
                self.table.insert(sorted, order);
                Value::Map(Arc::new(out))
            }
        }
    }
}

/// Back to JSON for `json`, restoring recorded key orders (Go maps, which were never
/// recorded in another order, stay sorted as Go writes them) and nils.
fn to_json(v: &Value, table: &OrderTable, nils: &Nils) -> Result<Json, gotmpl::TemplateError> {
    Ok(match v {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::String(s) => Json::String(s.to_string()),
        Value::List(l) if Arc::ptr_eq(l, &nils.list) => Json::Null,
        Value::Map(m) if Arc::ptr_eq(m, &nils.map) => Json::Null,
        Value::List(l) => Json::Array(
            l.iter()
                .map(|x| to_json(x, table, nils))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let sorted: Vec<Arc<str>> = m.keys().cloned().collect();
            let keys: Vec<Arc<str>> = table.get(&sorted).cloned().unwrap_or(sorted);
            let mut out = serde_json::Map::new();
            for k in keys {
                if let Some(x) = m.get(&k) {
                    out.insert(k.to_string(), to_json(x, table, nils)?);
                }
            }
            Json::Object(out)
        }
        #[allow(unreachable_patterns)]
        _ => return Err(exec_err("json: unsupported value")),
    })
}

fn exec_err(msg: &str) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(msg.to_string())
}

fn arity(args: &[Value], n: usize, name: &str) -> Result<(), gotmpl::TemplateError> {
    if args.len() != n {
        return Err(exec_err(&format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn string_arg<'a>(v: &'a Value, name: &str) -> Result<&'a str, gotmpl::TemplateError> {
    v.as_str().ok_or_else(|| {
        exec_err(&format!(
            "error calling {name}: wrong type for value; expected string; got {v}"
        ))
    })
}

fn int_arg(v: &Value, name: &str) -> Result<i64, gotmpl::TemplateError> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => i64::try_from(*u).map_err(|_| exec_err("integer overflow")),
        _ => Err(exec_err(&format!(
            "error calling {name}: wrong type for value; expected int; got {v}"
        ))),
    }
}

fn json_fn(args: &[Value], state: &RwLock<State>) -> gotmpl::Result<Value> {
    arity(args, 1, "json")?;
    let st = state.read().map_err(|_| exec_err("json: poisoned lock"))?;
    let is_row = match (&st.row, &args[0]) {
        (Some(Value::Map(r)), Value::Map(a)) => Arc::ptr_eq(r, a),
        _ => false,
    };
    let (j, style) = if is_row {
        (
            to_json(&args[0], &OrderTable::new(), &st.nils)?,
            oci::GoJson::MARSHAL,
        )
    } else {
        (
            to_json(&args[0], &st.orders, &st.nils)?,
            oci::GoJson::ENCODER,
        )
    };
    let s = style
        .to_string(&j)
        .map_err(|e| exec_err(&format!("error calling json: {e}")))?;
    Ok(Value::String(Arc::from(s.trim())))
}

fn split_fn(args: &[Value]) -> gotmpl::Result<Value> {
    arity(args, 2, "split")?;
    let s = string_arg(&args[0], "split")?;
    let sep = string_arg(&args[1], "split")?;
    let parts: Vec<Value> = if sep.is_empty() {
        // Go splits into UTF-8 sequences.
        s.chars()
            .map(|c| Value::String(Arc::from(c.to_string().as_str())))
            .collect()
    } else {
        s.split(sep).map(|p| Value::String(Arc::from(p))).collect()
    };
    Ok(Value::List(parts.into()))
}

fn join_fn(args: &[Value]) -> gotmpl::Result<Value> {
    arity(args, 2, "join")?;
    let sep = string_arg(&args[1], "join")?;
    let items: Vec<String> = match &args[0] {
        Value::List(l) => l.iter().map(|x| x.to_string()).collect(),
        Value::Nil => Vec::new(),
        other => {
            return Err(exec_err(&format!(
                "error calling join: wrong type for value; expected []string; got {other}"
            )))
        }
    };
    Ok(Value::String(Arc::from(items.join(sep).as_str())))
}

fn str_fn(args: &[Value], name: &str, f: impl Fn(&str) -> String) -> gotmpl::Result<Value> {
    arity(args, 1, name)?;
    Ok(Value::String(Arc::from(
        f(string_arg(&args[0], name)?).as_str(),
    )))
}

fn pad_fn(args: &[Value]) -> gotmpl::Result<Value> {
    arity(args, 3, "pad")?;
    let s = string_arg(&args[0], "pad")?;
    let pre = int_arg(&args[1], "pad")?.max(0) as usize;
    let suf = int_arg(&args[2], "pad")?.max(0) as usize;
    if s.is_empty() {
        return Ok(Value::String(Arc::from("")));
    }
    Ok(Value::String(Arc::from(
        format!("{}{s}{}", " ".repeat(pre), " ".repeat(suf)).as_str(),
    )))
}

fn truncate_fn(args: &[Value]) -> gotmpl::Result<Value> {
    arity(args, 2, "truncate")?;
    let s = string_arg(&args[0], "truncate")?;
    let n = int_arg(&args[1], "truncate")?.max(0) as usize;
    if s.len() < n {
        return Ok(Value::String(Arc::from(s)));
    }
    // Go slices bytes; stay on a character boundary so the result is valid text.
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::String(Arc::from(&s[..end])))
}

/// Go's `strings.Title`: upper-cases the first letter of every word; words are separated by
/// spaces and by ASCII characters other than letters, digits and `_`.
pub fn go_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn functions() {
        let d = json!({"Os": "linux", "Id": "sha256:abcdef0123456789", "L": ["a", "b"], "E": ""});
        let r = |t: &str| render(t, &d).unwrap();
        assert_eq!(
            r("{{upper .Os}}/{{title .Os}}/{{lower \"ABC\"}}"),
            "LINUX/Linux/abc"
        );
        assert_eq!(r("{{split .Id \":\"}}"), "[sha256 abcdef0123456789]");
        assert_eq!(r("{{index (split .Id \":\") 1}}"), "abcdef0123456789");
        assert_eq!(r("{{join .L \", \"}}"), "a, b");
        assert_eq!(r("{{pad .Os 2 2}}|{{pad .E 2 2}}|"), "  linux  ||");
        assert_eq!(r("{{truncate .Id 12}}"), "sha256:abcde");
        assert_eq!(r("{{truncate .Os 12}}"), "linux");
        assert_eq!(r("{{len .L}} {{range .L}}{{println .}}{{end}}"), "2 a\nb\n");
        assert_eq!(r("{{if eq .Os \"linux\"}}y{{else}}n{{end}}"), "y");
        assert_eq!(r("{{with .L}}{{index . 0}}{{end}}"), "a");
        assert_eq!(r("{{json .L}} {{json .Os}}"), "[\"a\",\"b\"] \"linux\"");
        assert_eq!(
            go_title("hello wORLD foo-bar_baz"),
            "Hello WORLD Foo-Bar_baz"
        );
    }

    #[test]
    fn json_keeps_struct_order_and_does_not_escape_html() {
        let d = json!({"C": {"Zeta": 1, "Alpha": "<&>", "Labels": {"b": "1", "a": "2"}}});
        assert_eq!(
            render("{{json .C}}", &d).unwrap(),
            r#"{"Zeta":1,"Alpha":"<&>","Labels":{"b":"1","a":"2"}}"#
        );
    }

    #[test]
    fn omitted_zero_fields_are_falsy_but_not_in_json() {
        let cfg = json!({"Hostname": "", "Domainname": "", "AttachStdin": false, "OpenStdin": false,
                          "Env": null});
        let d = json!({"Config": cfg});
        assert_eq!(
            render("{{if .Config.Healthcheck}}hc{{else}}nohc{{end}}", &d).unwrap(),
            "nohc"
        );
        assert_eq!(render("[{{.Config.StopSignal}}]", &d).unwrap(), "[]");
        assert_eq!(
            render("{{json .Config}}", &d).unwrap(),
            r#"{"Hostname":"","Domainname":"","AttachStdin":false,"OpenStdin":false,"Env":null}"#
        );
    }

    #[test]
    fn errors_are_docker_style_and_never_panic() {
        let d = json!({"Id": "x"});
        let e = render("{{.NoSuchField}}", &d).unwrap_err().to_string();
        assert!(e.starts_with("template parsing error: "), "{e}");
        assert!(e.contains("NoSuchField"), "{e}");
        for bad in [
            "{{",
            "{{.Id",
            "{{end}}",
            "{{range}}",
            "{{table .Id}}",
            "{{json}}",
            "{{pad .Id}}",
            "{{upper 1}}",
            "{{index .Id 5}}",
            "{{truncate .Id -1}}",
        ] {
            let r = render(bad, &d);
            if let Err(e) = r {
                assert!(
                    e.to_string().starts_with("template parsing error: "),
                    "{bad}: {e}"
                );
            }
        }
        assert_eq!(
            Template::parse("x\n{{if .Id}}{{else}}{{table .Id}}{{end}}")
                .unwrap_err()
                .to_string(),
            "template parsing error: template: :2: function \"table\" not defined"
        );
    }

    #[test]
    fn header_functions_return_their_argument() {
        let t = Template::parse_header("{{.ID}}\t{{upper .Size}}\t{{json .X}}").unwrap();
        let h = json!({"ID": "IMAGE ID", "Size": "SIZE", "X": "X Y"});
        assert_eq!(t.render(&h).unwrap(), "IMAGE ID\tSIZE\tX Y");
    }

    #[test]
    fn generated_templates_never_panic() {
        let pieces = [
            "{{", "}}", ".Id", ".L", " ", "json", "split", "join", "index", "len", "range", "end",
            "if", "else", "with", "\"x\"", "1", "-1", "|", "(", ")", "$v", ":=", "pad", "truncate",
            "title", "println", "printf", "\"%d\"", "{{-", "-}}", "$", ".", "define", "template",
        ];
        let d = json!({"Id": "sha256:ab", "L": ["a", "b"], "M": {"k": "v"}, "N": null});
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ok = 0;
        for _ in 0..5_000 {
            let n = (next() % 10) as usize;
            let t: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            match render(&t, &d) {
                Ok(_) => ok += 1,
                Err(e) => assert!(
                    e.to_string().starts_with("template parsing error: "),
                    "{t}: {e}"
                ),
            }
        }
        assert!(ok > 0);
    }
}
