//! A closed window's merged groups → the rows monasca-transform publishes:
//! the usage component (`fetch_quantity`, `fetch_quantity_util`,
//! `calculate_rate`), the `rollup_quantity` setter, the metric name and
//! period setters, then the pre-hourly stage (which, over one window, is the
//! original's pre-hourly processor fed one stage-one batch holding the hour).
//! Fields the original leaves ungrouped read `NA` after the usage step and
//! `all` after a rollup, as in the original.

use crate::agg::Agg;
use crate::spec::{Column, FetchOp, PreHourlyOp, RollupOp, TransformSpec, Usage, UsageColumn};
use monasca_guest_sdk::log;
use std::collections::BTreeMap;

/// A group of a window: its values (in `aggregation_group_by_list` order) and reduction.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub values: Vec<Option<String>>,
    pub agg: Agg,
}

/// An aggregated row (the original's instance usage).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub tenant_id: String,
    pub user_id: String,
    pub resource_uuid: String,
    pub geolocation: String,
    pub region: String,
    pub zone: String,
    pub host: String,
    pub project_id: String,
    pub aggregated_metric_name: String,
    pub aggregation_period: String,
    /// The grouping columns of the last step, by the original's names.
    pub extra: Vec<(String, Option<String>)>,
    pub quantity: f64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub record_count: f64,
    /// `calculate_rate`'s oldest and latest quantities.
    pub rate: Option<(f64, f64)>,
}

impl Row {
    fn filled(with: &str) -> Row {
        Row {
            tenant_id: with.into(),
            user_id: with.into(),
            resource_uuid: with.into(),
            geolocation: with.into(),
            region: with.into(),
            zone: with.into(),
            host: with.into(),
            project_id: with.into(),
            aggregated_metric_name: with.into(),
            aggregation_period: with.into(),
            extra: Vec::new(),
            quantity: 0.0,
            first_ts: 0,
            last_ts: 0,
            record_count: 0.0,
            rate: None,
        }
    }

    /// A usage column's value.
    pub fn get(&self, column: &UsageColumn) -> Option<String> {
        Some(match column {
            UsageColumn::TenantId => self.tenant_id.clone(),
            UsageColumn::UserId => self.user_id.clone(),
            UsageColumn::ResourceUuid => self.resource_uuid.clone(),
            UsageColumn::Geolocation => self.geolocation.clone(),
            UsageColumn::Region => self.region.clone(),
            UsageColumn::Zone => self.zone.clone(),
            UsageColumn::Host => self.host.clone(),
            UsageColumn::ProjectId => self.project_id.clone(),
            UsageColumn::AggregatedMetricName => self.aggregated_metric_name.clone(),
            UsageColumn::AggregationPeriod => self.aggregation_period.clone(),
            UsageColumn::Extra(name) => return self.extra.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.clone()),
        })
    }

    fn set(&mut self, column: &UsageColumn, value: Option<String>) {
        let text = value.clone().unwrap_or_else(|| "all".into());
        match column {
            UsageColumn::TenantId => self.tenant_id = text,
            UsageColumn::UserId => self.user_id = text,
            UsageColumn::ResourceUuid => self.resource_uuid = text,
            UsageColumn::Geolocation => self.geolocation = text,
            UsageColumn::Region => self.region = text,
            UsageColumn::Zone => self.zone = text,
            UsageColumn::Host => self.host = text,
            UsageColumn::ProjectId => {}
            UsageColumn::AggregatedMetricName => self.aggregated_metric_name = text,
            UsageColumn::AggregationPeriod => self.aggregation_period = text,
            UsageColumn::Extra(_) => {}
        }
    }

    /// A `dimension_list` entry's value: a row field, else the grouping
    /// columns' values, else `all` (the original's `extract_dimensions`).
    pub fn dimension(&self, name: &str) -> Option<String> {
        match UsageColumn::parse(name) {
            Some(column) if !matches!(column, UsageColumn::Extra(_)) => self.get(&column),
            _ => match self.extra.iter().find(|(k, _)| k == name) {
                Some((_, value)) => value.clone(),
                None => Some("all".into()),
            },
        }
    }
}

/// The usage step's row for one group.
fn usage_row(spec: &TransformSpec, group: &Group, quantity: f64) -> Row {
    let mut row = Row::filled("NA");
    for (column, value) in spec.group_by.iter().zip(&group.values) {
        let text = value.clone().unwrap_or_else(|| "NA".into());
        match column {
            Column::TenantId => row.tenant_id = text,
            Column::UserId => row.user_id = text,
            Column::ResourceUuid => row.resource_uuid = text,
            Column::Region => row.region = text,
            Column::Zone => row.zone = text,
            Column::Host => row.host = text,
            _ => {}
        }
        row.extra.push((column.map_name(), value.clone()));
    }
    row.project_id = row.tenant_id.clone();
    row.quantity = quantity;
    row.first_ts = group.agg.first_ts;
    row.last_ts = group.agg.last_ts;
    row.record_count = group.agg.count as f64;
    row
}

/// A rollup bucket's running figures.
struct Acc {
    n: usize,
    sum: f64,
    min: f64,
    max: f64,
    first_ts: i64,
    last_ts: i64,
    record_count: f64,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            n: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            record_count: 0.0,
        }
    }

    fn add(&mut self, row: &Row) {
        self.n += 1;
        self.sum += row.quantity;
        self.min = self.min.min(row.quantity);
        self.max = self.max.max(row.quantity);
        self.first_ts = self.first_ts.min(row.first_ts);
        self.last_ts = self.last_ts.max(row.last_ts);
        self.record_count += row.record_count;
    }

    fn quantity(&self, op: RollupOp) -> f64 {
        match op {
            RollupOp::Sum => self.sum,
            RollupOp::Avg => self.sum / self.n as f64,
            RollupOp::Min => self.min,
            RollupOp::Max => self.max,
        }
    }
}

/// The `rollup_quantity` setter (and the pre-hourly rollup): group rows by
/// `columns`, combine quantities with `op`, sum counts, widen the time span.
/// Rows are folded as they come: memory grows with the buckets, not the rows.
fn rollup(rows: impl IntoIterator<Item = Row>, columns: &[UsageColumn], op: RollupOp) -> Vec<Row> {
    let mut buckets: BTreeMap<Vec<Option<String>>, Acc> = BTreeMap::new();
    for row in rows {
        buckets.entry(columns.iter().map(|c| row.get(c)).collect()).or_insert_with(Acc::new).add(&row);
    }
    buckets
        .into_iter()
        .map(|(values, acc)| {
            let mut out = Row::filled("all");
            for (column, value) in columns.iter().zip(&values) {
                out.set(column, value.clone());
                out.extra.push((column.name().to_string(), value.clone()));
            }
            out.project_id =
                if columns.contains(&UsageColumn::TenantId) { out.tenant_id.clone() } else { "all".into() };
            out.quantity = acc.quantity(op);
            out.first_ts = acc.first_ts;
            out.last_ts = acc.last_ts;
            out.record_count = acc.record_count;
            out
        })
        .collect()
}

/// `fetch_quantity_util`: utilised = (100 − idle) × total / 100 per group of
/// the columns other than `event_type`; total when idle is 0 or missing.
fn utilisation<'a>(
    spec: &'a TransformSpec,
    groups: &'a [Group],
    op: FetchOp,
    quantity_event: &'a str,
    idle_event: &str,
) -> Box<dyn Iterator<Item = Row> + 'a> {
    let Some(at) = spec.group_by.iter().position(|c| *c == Column::EventType) else {
        return Box::new(std::iter::empty());
    };
    let others = move |g: &Group| -> Vec<Option<String>> {
        g.values.iter().enumerate().filter(|(i, _)| *i != at).map(|(_, v)| v.clone()).collect()
    };
    let event = move |g: &Group| g.values[at].as_deref().map(str::to_string);
    let idle: BTreeMap<Vec<Option<String>>, f64> = groups
        .iter()
        .filter(|g| event(g).as_deref() == Some(idle_event))
        .filter(|g| others(g).iter().all(Option::is_some))
        .map(|g| (others(g), g.agg.quantity(op)))
        .collect();
    Box::new(groups.iter().filter(move |g| event(g).as_deref() == Some(quantity_event)).map(move |g| {
        let total = g.agg.quantity(op);
        let utilised = match idle.get(&others(g)) {
            Some(&idle) if idle != 0.0 => (100.0 - idle) * total / 100.0,
            _ => total,
        };
        let mut row = usage_row(spec, g, utilised);
        row.extra.retain(|(k, _)| k != "event_type");
        row
    }))
}

/// The rows a closed window gives for one spec (empty when nothing is due).
pub fn rows(spec: &TransformSpec, window_start: i64, groups: &[Group]) -> Vec<Row> {
    let period = spec.period.name();
    let usage: Box<dyn Iterator<Item = Row> + '_> = match &spec.usage {
        Usage::FetchQuantity(op) => Box::new(groups.iter().map(|g| usage_row(spec, g, g.agg.quantity(*op)))),
        Usage::FetchQuantityUtil { op, quantity_event, idle_event } => {
            utilisation(spec, groups, *op, quantity_event, idle_event)
        }
        Usage::CalculateRate => {
            let latest = groups.iter().map(|g| usage_row(spec, g, g.agg.quantity(FetchOp::Avg)));
            let oldest = groups.iter().map(|g| usage_row(spec, g, g.agg.quantity(FetchOp::Oldest)));
            let (Some(latest), Some(oldest)) =
                (rollup(latest, &[], RollupOp::Sum).pop(), rollup(oldest, &[], RollupOp::Sum).pop())
            else {
                return Vec::new();
            };
            if oldest.quantity == 0.0 {
                log::warn(&format!(
                    "transform spec `{}`: no rate for the window starting {window_start}: the oldest quantity is 0",
                    spec.metric_id
                ));
                return Vec::new();
            }
            let mut row = latest.clone();
            row.quantity = ((oldest.quantity - latest.quantity) / oldest.quantity) * 100.0;
            row.first_ts = oldest.first_ts;
            row.record_count = oldest.record_count + latest.record_count;
            row.rate = Some((oldest.quantity, latest.quantity));
            Box::new(std::iter::once(row))
        }
    };
    let mut rows: Vec<Row> = match &spec.rollup {
        Some((columns, op)) if spec.usage != Usage::CalculateRate => rollup(usage, columns, *op),
        _ => usage.collect(),
    };
    for row in &mut rows {
        row.aggregated_metric_name = spec.aggregated_metric_name.clone();
        row.aggregation_period = period.to_string();
    }
    match spec.pre_hourly {
        PreHourlyOp::Rollup(op) => rollup(rows, &spec.pre_hourly_group_by, op)
            .into_iter()
            .map(|mut r| {
                r.aggregated_metric_name = spec.aggregated_metric_name.clone();
                r.aggregation_period = period.to_string();
                r
            })
            .collect(),
        PreHourlyOp::Rate => rows
            .into_iter()
            .map(|mut r| {
                if let Some((oldest, latest)) = r.rate {
                    r.quantity = 100.0 * ((oldest - latest) / oldest);
                    r.record_count += r.record_count;
                }
                r
            })
            .collect(),
    }
}
