//! monasca-transform's specs, parsed and checked once at `init`.
//!
//! `pre_transform_specs` say which metrics (by name) are kept, which raw fields
//! they must carry and which transform specs (`metric_id`s) each feeds;
//! `transform_specs` say how each `metric_id` is aggregated. Both come as the
//! original ships them: one JSON object per line (a JSON array works too). A
//! spec the original would fail on at run time (unknown operation, bad regex,
//! a column that does not exist) is refused here, with the spec and field named.

use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;

/// The length of an aggregation window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    Hourly,
    Minutely,
    Secondly,
}

impl Period {
    /// Parse `daily`, `hourly`, `minutely` or `secondly`.
    pub fn parse(text: &str) -> Option<Period> {
        match text {
            "daily" => Some(Period::Daily),
            "hourly" => Some(Period::Hourly),
            "minutely" => Some(Period::Minutely),
            "secondly" => Some(Period::Secondly),
            _ => None,
        }
    }

    /// The window length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Period::Daily => 86_400_000,
            Period::Hourly => 3_600_000,
            Period::Minutely => 60_000,
            Period::Secondly => 1_000,
        }
    }

    /// The name the original writes in the `aggregation_period` dimension.
    pub fn name(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Hourly => "hourly",
            Period::Minutely => "minutely",
            Period::Secondly => "secondly",
        }
    }

    /// Start of the window holding `ts_ms` (UTC, like the original on a UTC Spark session).
    pub fn window_start(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.millis()) * self.millis()
    }
}

/// A column of the original's record store (what `aggregation_group_by_list`
/// and `filter_by_list` name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    EventType,
    ResourceUuid,
    TenantId,
    UserId,
    Region,
    Zone,
    Host,
    MetricId,
    MetricGroup,
    Dimension(String),
    Meta(String),
    ValueMeta(String),
}

impl Column {
    /// Parse a column name: a record-store column or `dimensions#x`,
    /// `meta#x`, `value_meta#x` (the dotted Spark forms are accepted too).
    pub fn parse(name: &str) -> Option<Column> {
        for (prefix, make) in [
            ("dimensions", Column::Dimension as fn(String) -> Column),
            ("meta", Column::Meta),
            ("value_meta", Column::ValueMeta),
        ] {
            for sep in ['#', '.'] {
                if let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix(sep)) {
                    return (!rest.is_empty()).then(|| make(rest.to_string()));
                }
            }
        }
        Some(match name {
            "event_type" | "event_quantity_name" => Column::EventType,
            "resource_uuid" => Column::ResourceUuid,
            "tenant_id" => Column::TenantId,
            "user_id" => Column::UserId,
            "region" => Column::Region,
            "zone" => Column::Zone,
            "host" => Column::Host,
            "metric_id" => Column::MetricId,
            "metric_group" => Column::MetricGroup,
            _ => return None,
        })
    }

    /// The name the original uses for it in `extra_data_map`.
    pub fn map_name(&self) -> String {
        match self {
            Column::EventType => "event_type".into(),
            Column::ResourceUuid => "resource_uuid".into(),
            Column::TenantId => "tenant_id".into(),
            Column::UserId => "user_id".into(),
            Column::Region => "region".into(),
            Column::Zone => "zone".into(),
            Column::Host => "host".into(),
            Column::MetricId => "metric_id".into(),
            Column::MetricGroup => "metric_group".into(),
            Column::Dimension(x) => format!("dimensions#{x}"),
            Column::Meta(x) => format!("meta#{x}"),
            Column::ValueMeta(x) => format!("value_meta#{x}"),
        }
    }
}

/// `usage_fetch_operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOp {
    Sum,
    Max,
    Min,
    Avg,
    Latest,
    Oldest,
}

/// `setter_rollup_operation` and `pre_hourly_operation` (but `rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollupOp {
    Sum,
    Max,
    Min,
    Avg,
}

impl RollupOp {
    fn parse(text: &str) -> Option<RollupOp> {
        match text {
            "sum" => Some(RollupOp::Sum),
            "max" => Some(RollupOp::Max),
            "min" => Some(RollupOp::Min),
            "avg" => Some(RollupOp::Avg),
            _ => None,
        }
    }
}

/// `aggregation_pipeline.usage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// `fetch_quantity`: the operation over each group.
    FetchQuantity(FetchOp),
    /// `fetch_quantity_util`: utilised = (100 − idle%) × total / 100 (total
    /// when idle is 0 or missing), each the operation over its group.
    FetchQuantityUtil { op: FetchOp, quantity_event: String, idle_event: String },
    /// `calculate_rate`: (oldest − latest) / oldest × 100, over summed groups.
    CalculateRate,
}

/// A `filter_by_list` entry: keep records whose field matches (`include`)
/// or does not match (`exclude`) a regex, searched anywhere in the value
/// (Spark's `rlike`). A record without the field is dropped either way, as
/// in the original (a comparison with null is never true).
#[derive(Debug, Clone)]
pub struct Filter {
    pub column: Column,
    pub regex: Regex,
    pub include: bool,
}

/// A column of the aggregated rows the rollups group by (the original's
/// instance-usage columns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageColumn {
    TenantId,
    UserId,
    ResourceUuid,
    Geolocation,
    Region,
    Zone,
    Host,
    ProjectId,
    AggregatedMetricName,
    AggregationPeriod,
    /// A `dimensions#x` / `meta#x` / `value_meta#x` value from the first
    /// aggregation's groups.
    Extra(String),
}

/// The instance-usage columns with a name of their own, and their names.
const USAGE_COLUMNS: [(UsageColumn, &str); 10] = [
    (UsageColumn::TenantId, "tenant_id"),
    (UsageColumn::UserId, "user_id"),
    (UsageColumn::ResourceUuid, "resource_uuid"),
    (UsageColumn::Geolocation, "geolocation"),
    (UsageColumn::Region, "region"),
    (UsageColumn::Zone, "zone"),
    (UsageColumn::Host, "host"),
    (UsageColumn::ProjectId, "project_id"),
    (UsageColumn::AggregatedMetricName, "aggregated_metric_name"),
    (UsageColumn::AggregationPeriod, "aggregation_period"),
];

impl UsageColumn {
    /// A column by its name; `dimensions#x`, `meta#x`, `value_meta#x` are
    /// extra-data-map entries; anything else is unknown.
    pub fn parse(name: &str) -> Option<UsageColumn> {
        if name.starts_with("dimensions#") || name.starts_with("meta#") || name.starts_with("value_meta#") {
            return Some(UsageColumn::Extra(name.to_string()));
        }
        USAGE_COLUMNS.iter().find(|(_, n)| *n == name).map(|(c, _)| c.clone())
    }

    /// The original's name of the column.
    pub fn name(&self) -> &str {
        match self {
            UsageColumn::Extra(name) => name,
            column => USAGE_COLUMNS.iter().find(|(c, _)| c == column).map(|(_, n)| *n).unwrap_or_default(),
        }
    }
}

/// `pre_hourly_operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreHourlyOp {
    Rollup(RollupOp),
    Rate,
}

/// One transform spec, checked.
#[derive(Debug, Clone)]
pub struct TransformSpec {
    pub metric_id: String,
    pub usage: Usage,
    pub aggregated_metric_name: String,
    pub period: Period,
    pub group_by: Vec<Column>,
    pub filters: Vec<Filter>,
    /// `Some` when the `rollup_quantity` setter runs.
    pub rollup: Option<(Vec<UsageColumn>, RollupOp)>,
    pub dimension_list: Vec<String>,
    pub pre_hourly: PreHourlyOp,
    pub pre_hourly_group_by: Vec<UsageColumn>,
}

/// One pre-transform spec, checked.
#[derive(Debug, Clone)]
pub struct PreTransformSpec {
    pub event_type: String,
    /// Indexes into [`Specs::transforms`]; ids without a transform spec are
    /// dropped (the original finds no spec for them and produces nothing).
    pub transforms: Vec<usize>,
    pub required: Vec<Required>,
    pub default_region: Option<String>,
    pub default_zone: Option<String>,
}

/// A `required_raw_fields_list` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Required {
    /// A top-level envelope field such as `creation_time`.
    Envelope(String),
    Dimension(String),
    Meta(String),
    ValueMeta(String),
}

/// Every spec, indexed.
#[derive(Debug, Clone)]
pub struct Specs {
    pub transforms: Vec<TransformSpec>,
    pub by_event_type: HashMap<String, PreTransformSpec>,
}

/// The default group of `pre_hourly_group_by_list: ["default"]`.
const PRE_HOURLY_DEFAULT: [&str; 10] = [
    "tenant_id",
    "user_id",
    "resource_uuid",
    "geolocation",
    "region",
    "zone",
    "host",
    "project_id",
    "aggregated_metric_name",
    "aggregation_period",
];

/// The shipped specs, used when the configuration gives none.
pub const SHIPPED_PRE_TRANSFORM: &str = include_str!("../specs/pre_transform_specs.json");
pub const SHIPPED_TRANSFORM: &str = include_str!("../specs/transform_specs.json");

/// Objects of a JSON-lines text or of a JSON array.
fn objects(text: &str, what: &str) -> Result<Vec<Value>, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return match serde_json::from_str::<Value>(trimmed) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(format!("{what}: not a JSON array")),
            Err(e) => Err(format!("{what}: not valid JSON: {e}")),
        };
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(line).map_err(|e| format!("{what} line {}: not valid JSON: {e}", n + 1))?);
    }
    Ok(out)
}

/// A string field of `object`, or an error naming the spec and the field.
fn text<'a>(object: &'a Value, field: &str, spec: &str) -> Result<&'a str, String> {
    match object.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("{spec}: `{field}` must be a string, not {other}")),
        None => Err(format!("{spec}: `{field}` is missing")),
    }
}

/// A list-of-strings field of `object` (missing = empty when `optional`).
fn texts(object: &Value, field: &str, spec: &str, optional: bool) -> Result<Vec<String>, String> {
    match object.get(field) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| format!("{spec}: `{field}` holds {v}, not a string")))
            .collect(),
        None | Some(Value::Null) if optional => Ok(Vec::new()),
        None | Some(Value::Null) => Err(format!("{spec}: `{field}` is missing")),
        Some(other) => Err(format!("{spec}: `{field}` must be a list of strings, not {other}")),
    }
}

fn parse_transform(object: &Value, period_override: Option<Period>) -> Result<TransformSpec, String> {
    let metric_id = text(object, "metric_id", "transform spec")?.to_string();
    let spec = format!("transform spec `{metric_id}`");
    let params =
        object.get("aggregation_params_map").ok_or_else(|| format!("{spec}: `aggregation_params_map` is missing"))?;
    let at = |field: &str| format!("{spec}: aggregation_params_map.{field}");
    let pipeline =
        params.get("aggregation_pipeline").ok_or_else(|| format!("{}: missing", at("aggregation_pipeline")))?;
    let usage_name = text(pipeline, "usage", &at("aggregation_pipeline"))?;
    let setters = texts(pipeline, "setters", &at("aggregation_pipeline"), true)?;
    let usage = match usage_name {
        "fetch_quantity" | "fetch_quantity_util" => {
            let op = text(params, "usage_fetch_operation", &at(""))?;
            let op = match op {
                "sum" => FetchOp::Sum,
                "max" => FetchOp::Max,
                "min" => FetchOp::Min,
                "avg" => FetchOp::Avg,
                "latest" => FetchOp::Latest,
                "oldest" => FetchOp::Oldest,
                other => {
                    return Err(format!(
                        "{}: unknown operation `{other}` (sum, max, min, avg, latest or oldest)",
                        at("usage_fetch_operation")
                    ))
                }
            };
            if usage_name == "fetch_quantity" {
                Usage::FetchQuantity(op)
            } else {
                if !matches!(op, FetchOp::Avg | FetchOp::Latest | FetchOp::Oldest) {
                    return Err(format!(
                        "{}: fetch_quantity_util supports avg, latest and oldest",
                        at("usage_fetch_operation")
                    ));
                }
                Usage::FetchQuantityUtil {
                    op,
                    quantity_event: text(params, "usage_fetch_util_quantity_event_type", &at(""))?.to_string(),
                    idle_event: text(params, "usage_fetch_util_idle_perc_event_type", &at(""))?.to_string(),
                }
            }
        }
        "calculate_rate" => Usage::CalculateRate,
        other => {
            return Err(format!(
                "{}: unknown usage `{other}` (fetch_quantity, fetch_quantity_util or calculate_rate)",
                at("aggregation_pipeline.usage")
            ))
        }
    };
    let period_name = text(params, "aggregation_period", &at(""))?;
    let period = Period::parse(period_name)
        .ok_or_else(|| format!("{}: unknown period `{period_name}`", at("aggregation_period")))?;
    let period = period_override.unwrap_or(period);
    let group_by = texts(params, "aggregation_group_by_list", &at(""), false)?
        .iter()
        .map(|c| Column::parse(c).ok_or_else(|| format!("{}: unknown column `{c}`", at("aggregation_group_by_list"))))
        .collect::<Result<Vec<_>, _>>()?;
    if matches!(usage, Usage::FetchQuantityUtil { .. }) && !group_by.contains(&Column::EventType) {
        return Err(format!("{}: fetch_quantity_util needs `event_type`", at("aggregation_group_by_list")));
    }
    let mut filters = Vec::new();
    if let Some(list) = params.get("filter_by_list").filter(|v| !v.is_null()) {
        let list = list.as_array().ok_or_else(|| format!("{}: must be a list", at("filter_by_list")))?;
        for (n, f) in list.iter().enumerate() {
            let here = at(&format!("filter_by_list[{n}]"));
            let field = text(f, "field_to_filter", &here)?;
            let column =
                Column::parse(field).ok_or_else(|| format!("{here}.field_to_filter: unknown column `{field}`"))?;
            let expression = text(f, "filter_expression", &here)?;
            let regex = Regex::new(expression).map_err(|e| format!("{here}.filter_expression: bad regex: {e}"))?;
            let include = match text(f, "filter_operation", &here)? {
                "include" => true,
                "exclude" => false,
                other => return Err(format!("{here}.filter_operation: `{other}` is neither include nor exclude")),
            };
            filters.push(Filter { column, regex, include });
        }
    }
    let usage_columns = |field: &str, list: Vec<String>| {
        list.iter()
            .map(|c| UsageColumn::parse(c).ok_or_else(|| format!("{}: unknown column `{c}`", at(field))))
            .collect::<Result<Vec<_>, _>>()
    };
    let rollup = if setters.iter().any(|s| s == "rollup_quantity") {
        let columns =
            usage_columns("setter_rollup_group_by_list", texts(params, "setter_rollup_group_by_list", &at(""), true)?)?;
        let op = text(params, "setter_rollup_operation", &at(""))?;
        let op = RollupOp::parse(op).ok_or_else(|| {
            format!("{}: unknown operation `{op}` (sum, max, min or avg)", at("setter_rollup_operation"))
        })?;
        Some((columns, op))
    } else {
        None
    };
    if usage == Usage::CalculateRate {
        let list = texts(params, "setter_rollup_group_by_list", &at(""), true)?;
        if !list.is_empty() {
            return Err(format!(
                "{}: calculate_rate sums over all groups; a rollup group is not supported",
                at("setter_rollup_group_by_list")
            ));
        }
    }
    let pre_hourly = match text(params, "pre_hourly_operation", &at(""))? {
        "rate" => PreHourlyOp::Rate,
        op => PreHourlyOp::Rollup(RollupOp::parse(op).ok_or_else(|| {
            format!("{}: unknown operation `{op}` (sum, max, min, avg or rate)", at("pre_hourly_operation"))
        })?),
    };
    if (pre_hourly == PreHourlyOp::Rate) != (usage == Usage::CalculateRate) {
        return Err(format!("{}: `rate` goes with calculate_rate and only with it", at("pre_hourly_operation")));
    }
    let mut pre_hourly_list = texts(params, "pre_hourly_group_by_list", &at(""), true)?;
    if pre_hourly_list.is_empty() || pre_hourly_list == ["default"] {
        pre_hourly_list = PRE_HOURLY_DEFAULT.iter().map(|s| s.to_string()).collect();
    }
    Ok(TransformSpec {
        aggregated_metric_name: text(params, "aggregated_metric_name", &at(""))?.to_string(),
        dimension_list: texts(params, "dimension_list", &at(""), false)?,
        pre_hourly_group_by: usage_columns("pre_hourly_group_by_list", pre_hourly_list)?,
        metric_id,
        usage,
        period,
        group_by,
        filters,
        rollup,
        pre_hourly,
    })
}

fn parse_pre_transform(object: &Value, transforms: &[TransformSpec]) -> Result<PreTransformSpec, String> {
    let event_type = text(object, "event_type", "pre-transform spec")?.to_string();
    let spec = format!("pre-transform spec `{event_type}`");
    let ids = texts(object, "metric_id_list", &spec, false)?;
    let required = texts(object, "required_raw_fields_list", &spec, true)?
        .into_iter()
        .map(|field| {
            let split = |prefix: &str| field.strip_prefix(prefix).map(str::to_string);
            if let Some(x) = split("dimensions#") {
                Required::Dimension(x)
            } else if let Some(x) = split("meta#") {
                Required::Meta(x)
            } else if let Some(x) = split("value_meta#") {
                Required::ValueMeta(x)
            } else {
                Required::Envelope(field)
            }
        })
        .collect();
    let params = object.get("event_processing_params");
    let default = |field: &str| {
        params.and_then(|p| p.get(field)).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string)
    };
    let transforms = ids.iter().filter_map(|id| transforms.iter().position(|t| &t.metric_id == id)).collect();
    Ok(PreTransformSpec {
        default_region: default("set_default_region_to"),
        default_zone: default("set_default_zone_to"),
        event_type,
        transforms,
        required,
    })
}

impl Specs {
    /// Parse both lists; `period_override` replaces every spec's period.
    pub fn parse(pre_transform: &str, transform: &str, period_override: Option<Period>) -> Result<Specs, String> {
        let mut transforms = Vec::new();
        for object in objects(transform, "transform_specs")? {
            let spec = parse_transform(&object, period_override)?;
            if transforms.iter().any(|t: &TransformSpec| t.metric_id == spec.metric_id) {
                return Err(format!("transform spec `{}`: metric_id given twice", spec.metric_id));
            }
            let hash = crate::exchange::id_hash(&spec.metric_id);
            if let Some(other) =
                transforms.iter().find(|t: &&TransformSpec| crate::exchange::id_hash(&t.metric_id) == hash)
            {
                return Err(format!(
                    "transform spec `{}`: its metric_id hashes like `{}`'s; rename one",
                    spec.metric_id, other.metric_id
                ));
            }
            transforms.push(spec);
        }
        let mut by_event_type = HashMap::new();
        for object in objects(pre_transform, "pre_transform_specs")? {
            let spec = parse_pre_transform(&object, &transforms)?;
            if by_event_type.contains_key(&spec.event_type) {
                return Err(format!("pre-transform spec `{}`: event_type given twice", spec.event_type));
            }
            by_event_type.insert(spec.event_type.clone(), spec);
        }
        if by_event_type.is_empty() {
            return Err("pre_transform_specs: no spec".into());
        }
        Ok(Specs { transforms, by_event_type })
    }

    /// Every transform spec's metric id.
    pub fn metric_ids(&self) -> impl Iterator<Item = &str> {
        self.transforms.iter().map(|t| t.metric_id.as_str())
    }

    /// The shortest window of any spec (markers are sent per such window).
    pub fn shortest_period(&self) -> i64 {
        self.transforms.iter().map(|t| t.period.millis()).min().unwrap_or(Period::Hourly.millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_specs_parse() {
        let specs = Specs::parse(SHIPPED_PRE_TRANSFORM, SHIPPED_TRANSFORM, None).unwrap();
        assert_eq!(specs.transforms.len(), 26);
        assert_eq!(specs.by_event_type.len(), 17);
        let cpu = &specs.by_event_type["cpu.total_logical_cores"];
        assert_eq!(cpu.transforms.len(), 4);
    }

    #[test]
    fn bad_specs_are_refused_with_the_spec_and_field_named() {
        let pre = r#"{"event_type":"a","metric_id_list":["x"],"required_raw_fields_list":[]}"#;
        let spec = |params: &str| {
            format!(
                r#"{{"metric_id":"x","aggregation_params_map":{{"aggregation_pipeline":{{"usage":"fetch_quantity","setters":["rollup_quantity"]}},"aggregated_metric_name":"a_agg","aggregation_period":"hourly","aggregation_group_by_list":["host"],"setter_rollup_group_by_list":[],"setter_rollup_operation":"sum","dimension_list":["host"],"pre_hourly_operation":"avg",{params}}}}}"#
            )
        };
        let err = |params: &str| Specs::parse(pre, &spec(params), None).unwrap_err();
        assert!(Specs::parse(pre, &spec(r#""usage_fetch_operation":"avg""#), None).is_ok());
        let e = err(r#""usage_fetch_operation":"median""#);
        assert!(e.contains("`x`") && e.contains("usage_fetch_operation") && e.contains("median"), "{e}");
        let e = err(
            r#""usage_fetch_operation":"avg","filter_by_list":[{"field_to_filter":"host","filter_expression":"(","filter_operation":"include"}]"#,
        );
        assert!(e.contains("filter_by_list[0].filter_expression: bad regex"), "{e}");
        let e = Specs::parse(
            pre,
            &spec(r#""usage_fetch_operation":"avg""#).replace(r#""aggregated_metric_name":"a_agg","#, ""),
            None,
        )
        .unwrap_err();
        assert!(e.contains("aggregated_metric_name") && e.contains("missing"), "{e}");
        let e = Specs::parse(
            pre,
            &spec(r#""usage_fetch_operation":"avg""#).replace(r#"["host"],"setter"#, r#"["nope"],"setter"#),
            None,
        )
        .unwrap_err();
        assert!(e.contains("unknown column `nope`"), "{e}");
    }
}
