//! Cron expressions: parsing with standard (Vixie) cron semantics and
//! computing the next firing time in an IANA time zone.
//!
//! An expression has five whitespace-separated fields — minute (0-59),
//! hour (0-23), day-of-month (1-31), month (1-12 or `JAN`-`DEC`) and
//! day-of-week (0-7 where 0 and 7 are Sunday, or `SUN`-`SAT`) — or is one of
//! the aliases `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//! `@midnight` and `@hourly`.
//!
//! Each field is a comma-separated list of items; an item is `*`, a value, a
//! range `a-b`, or one of those followed by a step: `*/n` (from the field's
//! minimum), `a-b/n` (from `a`) and `a/n` (meaning `a-max/n`).
//!
//! Day matching follows Vixie cron: when both day fields are restricted
//! (neither field's text starts with `*`) a day matches if *either* matches;
//! otherwise both must match.
//!
//! Schedules are evaluated on the wall clock of their time zone. A matching
//! wall time that does not exist (skipped by a daylight-saving jump forward)
//! fires at the first instant after the gap, once, however many skipped
//! minutes match. A wall time that occurs twice (clocks set back) fires once,
//! at its earlier instant.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;

/// How many local days [`Schedule::next_after`] searches before giving up.
///
/// The Gregorian calendar repeats every 400 years, so any date pattern that
/// can occur at all occurs within this window (a 29 February that must also
/// be a given weekday can be 40 years away).
const SEARCH_DAYS: u64 = 401 * 366;

/// The longest run of nonexistent wall-clock minutes that is bridged when
/// resolving a wall time that falls into a gap (two days covers every known
/// zone change, including whole skipped days).
const MAX_GAP_MINUTES: u32 = 2 * 24 * 60;

/// Latest possible day of each month (February counts 29 for leap years).
const MONTH_MAX_DAYS: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Minute of the hour, 0-59.
    Minute,
    /// Hour of the day, 0-23.
    Hour,
    /// Day of the month, 1-31.
    DayOfMonth,
    /// Month of the year, 1-12 or `JAN`-`DEC`.
    Month,
    /// Day of the week, 0-7 (0 and 7 are Sunday) or `SUN`-`SAT`.
    DayOfWeek,
}

impl Field {
    /// The field's name as used in error messages, e.g. `day-of-month`.
    pub fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The smallest value the field accepts.
    pub fn min(self) -> u32 {
        match self {
            Field::Minute | Field::Hour | Field::DayOfWeek => 0,
            Field::DayOfMonth | Field::Month => 1,
        }
    }

    /// The largest value the field accepts (7 for day-of-week, an alias of
    /// Sunday).
    pub fn max(self) -> u32 {
        match self {
            Field::Minute => 59,
            Field::Hour => 23,
            Field::DayOfMonth => 31,
            Field::Month => 12,
            Field::DayOfWeek => 7,
        }
    }

    /// Names accepted in place of numbers, with the value of the first name.
    fn names(self) -> (&'static [&'static str], u32) {
        match self {
            Field::Month => (&MONTH_NAMES, 1),
            Field::DayOfWeek => (&WEEKDAY_NAMES, 0),
            _ => (&[], 0),
        }
    }

    /// What a value of this field looks like, for error messages.
    fn expected(self) -> &'static str {
        match self {
            Field::Minute => "a number 0-59",
            Field::Hour => "a number 0-23",
            Field::DayOfMonth => "a number 1-31",
            Field::Month => "a number 1-12 or a name JAN-DEC",
            Field::DayOfWeek => "a number 0-7 or a name SUN-SAT",
        }
    }

    /// The bit set with every legal value of the field (day-of-week without
    /// the Sunday alias 7).
    fn full(self) -> u64 {
        let max = match self {
            Field::DayOfWeek => 6,
            other => other.max(),
        };
        (self.min()..=max).fold(0, |bits, v| bits | (1 << v))
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a cron expression or builder field was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CronError {
    /// The expression does not have exactly five fields (and is not an alias).
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) or a single @alias, \
         got {count} field(s) in `{expr}`"
    )]
    FieldCount {
        /// How many whitespace-separated fields were given.
        count: usize,
        /// The expression text.
        expr: String,
    },
    /// An `@` alias that is not known.
    #[error(
        "unknown alias `{alias}` (expected @yearly, @annually, @monthly, @weekly, @daily, \
         @midnight or @hourly) in place of minute hour day-of-month month day-of-week"
    )]
    UnknownAlias {
        /// The alias as written.
        alias: String,
    },
    /// A cron alias this library deliberately does not support (`@reboot`).
    #[error("alias `{alias}` is not supported: jobs have no notion of a system start")]
    UnsupportedAlias {
        /// The alias as written.
        alias: String,
    },
    /// A field (given to the builder) is empty.
    #[error("{field}: field is empty (`{text}`)")]
    EmptyField {
        /// The field.
        field: Field,
        /// The field text as given.
        text: String,
    },
    /// A list has an empty item, as in `1,,2` or `1,`.
    #[error("{field}: empty list item in `{text}`")]
    EmptyItem {
        /// The field.
        field: Field,
        /// The whole field text.
        text: String,
    },
    /// A value is neither a number nor a name known for the field.
    #[error("{field}: invalid value `{value}` (expected {})", field.expected())]
    InvalidValue {
        /// The field.
        field: Field,
        /// The offending text.
        value: String,
    },
    /// A number is outside the field's range.
    #[error("{field}: value {value} out of range {min}-{max}")]
    OutOfRange {
        /// The field.
        field: Field,
        /// The offending number as written.
        value: String,
        /// The field's minimum.
        min: u32,
        /// The field's maximum.
        max: u32,
    },
    /// A range whose start is after its end, as in `5-1`.
    #[error("{field}: range `{text}` is reversed ({start} is after {end})")]
    ReversedRange {
        /// The field.
        field: Field,
        /// The item text.
        text: String,
        /// The range start.
        start: u32,
        /// The range end.
        end: u32,
    },
    /// A step of zero, as in `*/0`.
    #[error("{field}: step must be at least 1 in `{text}`")]
    ZeroStep {
        /// The field.
        field: Field,
        /// The item text.
        text: String,
    },
    /// A step that is not a positive number, as in `*/x`.
    #[error("{field}: invalid step `{step}` in `{text}` (expected a positive number)")]
    InvalidStep {
        /// The field.
        field: Field,
        /// The item text.
        text: String,
        /// The step as written.
        step: String,
    },
    /// The day-of-month and month fields allow no real date (e.g. 30 February)
    /// and day-of-week does not add days, so the schedule would never fire.
    #[error(
        "day-of-month `{day_of_month}` never occurs in month `{month}`: the day-of-month/month \
         combination never occurs, so the schedule would never fire"
    )]
    NeverFires {
        /// The day-of-month field text.
        day_of_month: String,
        /// The month field text.
        month: String,
    },
}

/// A parsed cron schedule together with the time zone it is evaluated in.
///
/// Two schedules are equal when their expression text, their fields and their
/// time zone are equal.
///
/// # Example
///
/// ```text
/// use plainjobs::schedule::Schedule;
///
/// let schedule: Schedule = "30 4 1,15 * 5".parse()?;
/// let schedule = schedule.with_timezone(chrono_tz::Europe::Berlin);
/// let after = "2025-03-02T00:00:00Z".parse()?;
/// let next = schedule.next_after(after); // Some(2025-03-07T03:30:00Z), a Friday
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Schedule {
    expr: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    day_or: bool,
    tz: Tz,
}

impl Schedule {
    /// Parses a five-field cron expression or an `@alias`; the schedule is
    /// evaluated in UTC until [`Schedule::with_timezone`] says otherwise.
    ///
    /// # Errors
    ///
    /// Returns a [`CronError`] naming the field and the offending text when
    /// the expression does not have five fields, uses an unknown or
    /// unsupported alias, has a malformed or out-of-range item, or can never
    /// fire (such as `0 0 30 2 *`).
    pub fn parse(expr: &str) -> Result<Schedule, CronError> {
        let trimmed = expr.trim();
        let tokens: Vec<&str> = trimmed.split_ascii_whitespace().collect();
        if let Some(first) = tokens.first().filter(|t| t.starts_with('@')) {
            if tokens.len() != 1 {
                return Err(CronError::FieldCount {
                    count: tokens.len(),
                    expr: trimmed.to_string(),
                });
            }
            let fields = alias_fields(first)?;
            let mut schedule = Schedule::from_texts(fields, None)?;
            schedule.expr = (*first).to_string();
            return Ok(schedule);
        }
        let fields: [&str; 5] =
            tokens
                .as_slice()
                .try_into()
                .map_err(|_| CronError::FieldCount {
                    count: tokens.len(),
                    expr: trimmed.to_string(),
                })?;
        let mut schedule = Schedule::from_texts(fields, None)?;
        schedule.expr = trimmed.to_string();
        Ok(schedule)
    }

    /// Starts building a schedule field by field; every field defaults to `*`.
    pub fn builder() -> ScheduleBuilder {
        ScheduleBuilder::default()
    }

    /// Returns the schedule evaluated in `tz` instead (the default is UTC).
    #[must_use]
    pub fn with_timezone(mut self, tz: Tz) -> Schedule {
        self.tz = tz;
        self
    }

    /// The time zone the schedule is evaluated in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The expression: the source text for parsed schedules (trimmed), a
    /// canonical five-field rendering for builder-made ones.
    ///
    /// A builder-made schedule that combines two restricted day fields with
    /// AND has no exact five-field spelling in Vixie syntax (which would OR
    /// them), so its rendering is descriptive only.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The first firing strictly after `after`, or `None` if the schedule
    /// does not fire within the next 400 years (which validation rules out).
    ///
    /// Firings are at whole minutes of the schedule's wall clock. A matching
    /// wall time skipped by a daylight-saving jump fires at the first instant
    /// after the gap; a wall time that occurs twice fires at its earlier
    /// instant only.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.tz).naive_local();
        let start = local
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(TimeDelta::minutes(1))?;
        let limit = start
            .date()
            .checked_add_days(chrono::Days::new(SEARCH_DAYS))
            .unwrap_or(NaiveDate::MAX);
        // Mapping wall times to instants (earlier instant when ambiguous, end
        // of the gap when nonexistent) never goes backwards, and every wall
        // time before `start` maps to an instant at or before `after`, so the
        // first matching wall time from `start` whose instant is after
        // `after` is the answer. Candidates only map to `after` or earlier
        // inside a repeated hour or a gap, so this loop is short.
        let mut from = start;
        loop {
            let wall = self.next_wall_from(from, limit)?;
            let instant = self.resolve(wall)?;
            if instant > after {
                return Some(instant);
            }
            from = wall.checked_add_signed(TimeDelta::minutes(1))?;
        }
    }

    /// The firings strictly after `after`, in order (see
    /// [`Schedule::next_after`]).
    pub fn upcoming(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }

    /// Whether the wall-clock minute `t` (seconds ignored) matches the
    /// schedule's fields, whether or not that wall time exists in the zone.
    pub fn matches_local(&self, t: NaiveDateTime) -> bool {
        has(self.months, t.month())
            && self.day_matches(t.date())
            && has(self.hours, t.hour())
            && has(self.minutes, t.minute())
    }

    /// Builds a schedule from five field texts. `day_or: None` applies the
    /// Vixie rule (OR unless a day field starts with `*`).
    fn from_texts(fields: [&str; 5], day_or: Option<bool>) -> Result<Schedule, CronError> {
        let [minute, hour, dom, month, dow] = fields;
        let minutes = parse_field(Field::Minute, minute)?;
        let hours = parse_field(Field::Hour, hour)?;
        let days_of_month = parse_field(Field::DayOfMonth, dom)?;
        let months = parse_field(Field::Month, month)?;
        let days_of_week = parse_field(Field::DayOfWeek, dow)?;
        let day_or =
            day_or.unwrap_or_else(|| !dom.trim().starts_with('*') && !dow.trim().starts_with('*'));
        // With OR, day-of-week alone fires in every month. With AND, any real
        // date occurs on every weekday within the 400-year calendar cycle.
        let date_exists = (1..=12u32).any(|m| {
            has(months, m) && (1..=MONTH_MAX_DAYS[m as usize - 1]).any(|d| has(days_of_month, d))
        });
        if !day_or && !date_exists {
            return Err(CronError::NeverFires {
                day_of_month: dom.trim().to_string(),
                month: month.trim().to_string(),
            });
        }
        Ok(Schedule {
            expr: String::new(),
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            day_or,
            tz: Tz::UTC,
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = has(self.days_of_month, date.day());
        let dow = has(self.days_of_week, date.weekday().num_days_from_sunday());
        if self.day_or {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first matching wall-clock minute at or after `from` (taken at
    /// minute precision), on or before `limit`.
    fn next_wall_from(&self, from: NaiveDateTime, limit: NaiveDate) -> Option<NaiveDateTime> {
        let mut date = from.date();
        let mut earliest = (from.hour(), from.minute());
        while date <= limit {
            if !has(self.months, date.month()) {
                date = first_of_next_month(date)?;
                earliest = (0, 0);
                continue;
            }
            if self.day_matches(date) {
                if let Some((h, m)) = self.first_time_from(earliest.0, earliest.1) {
                    return date.and_hms_opt(h, m, 0);
                }
            }
            date = date.succ_opt()?;
            earliest = (0, 0);
        }
        None
    }

    /// The first matching (hour, minute) at or after `hour:minute` on a day.
    fn first_time_from(&self, hour: u32, minute: u32) -> Option<(u32, u32)> {
        let h = next_bit(self.hours, hour)?;
        if h == hour {
            if let Some(m) = next_bit(self.minutes, minute) {
                return Some((h, m));
            }
            let h = next_bit(self.hours, hour + 1)?;
            return Some((h, next_bit(self.minutes, 0)?));
        }
        Some((h, next_bit(self.minutes, 0)?))
    }

    /// The instant a wall time fires at: itself, its earlier instant when it
    /// occurs twice, or the first instant after the gap when it does not
    /// exist.
    fn resolve(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut w = wall;
        for _ in 0..=MAX_GAP_MINUTES {
            match self.tz.from_local_datetime(&w) {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
                LocalResult::None => w = w.checked_add_signed(TimeDelta::minutes(1))?,
            }
        }
        None
    }
}

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

/// Builds a [`Schedule`] field by field.
///
/// Each field takes text in cron syntax for that field (`*`, `1,15`, `1-5`,
/// `*/10`, `mon-fri`, `JAN`, ...) and defaults to `*`. Unlike parsed
/// expressions, the two day fields are combined with AND unless
/// [`ScheduleBuilder::day_or`] asks for OR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleBuilder {
    minute: String,
    hour: String,
    day_of_month: String,
    month: String,
    day_of_week: String,
    day_or: bool,
    tz: Tz,
}

impl Default for ScheduleBuilder {
    fn default() -> Self {
        ScheduleBuilder {
            minute: "*".to_string(),
            hour: "*".to_string(),
            day_of_month: "*".to_string(),
            month: "*".to_string(),
            day_of_week: "*".to_string(),
            day_or: false,
            tz: Tz::UTC,
        }
    }
}

impl ScheduleBuilder {
    /// Sets the minute field (0-59).
    #[must_use]
    pub fn minute(mut self, f: &str) -> Self {
        self.minute = f.to_string();
        self
    }

    /// Sets the hour field (0-23).
    #[must_use]
    pub fn hour(mut self, f: &str) -> Self {
        self.hour = f.to_string();
        self
    }

    /// Sets the day-of-month field (1-31).
    #[must_use]
    pub fn day_of_month(mut self, f: &str) -> Self {
        self.day_of_month = f.to_string();
        self
    }

    /// Sets the month field (1-12 or `JAN`-`DEC`).
    #[must_use]
    pub fn month(mut self, f: &str) -> Self {
        self.month = f.to_string();
        self
    }

    /// Sets the day-of-week field (0-7, 0 and 7 being Sunday, or `SUN`-`SAT`).
    #[must_use]
    pub fn day_of_week(mut self, f: &str) -> Self {
        self.day_of_week = f.to_string();
        self
    }

    /// Combines day-of-month and day-of-week with OR when `yes` (a day
    /// matches if either field matches); the default, `false`, is AND.
    #[must_use]
    pub fn day_or(mut self, yes: bool) -> Self {
        self.day_or = yes;
        self
    }

    /// Sets the time zone the schedule is evaluated in (default UTC).
    #[must_use]
    pub fn timezone(mut self, tz: Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Validates the fields and builds the schedule; its expression is a
    /// canonical five-field rendering of the fields.
    ///
    /// # Errors
    ///
    /// Returns a [`CronError`] naming the field and the offending text when a
    /// field is empty, malformed or out of range, or when the schedule can
    /// never fire (such as day-of-month `31` in month `4` with AND).
    pub fn build(self) -> Result<Schedule, CronError> {
        let mut schedule = Schedule::from_texts(
            [
                &self.minute,
                &self.hour,
                &self.day_of_month,
                &self.month,
                &self.day_of_week,
            ],
            Some(self.day_or),
        )?;
        // With OR, an unrestricted day field makes every day match.
        if schedule.day_or
            && (schedule.days_of_month == Field::DayOfMonth.full()
                || schedule.days_of_week == Field::DayOfWeek.full())
        {
            schedule.days_of_month = Field::DayOfMonth.full();
            schedule.days_of_week = Field::DayOfWeek.full();
            schedule.day_or = false;
        }
        schedule.expr = [
            render(Field::Minute, schedule.minutes),
            render(Field::Hour, schedule.hours),
            render(Field::DayOfMonth, schedule.days_of_month),
            render(Field::Month, schedule.months),
            render(Field::DayOfWeek, schedule.days_of_week),
        ]
        .join(" ");
        schedule.tz = self.tz;
        Ok(schedule)
    }
}

/// The five field texts an alias stands for.
fn alias_fields(alias: &str) -> Result<[&'static str; 5], CronError> {
    let fields = match alias.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => ["0", "0", "1", "1", "*"],
        "@monthly" => ["0", "0", "1", "*", "*"],
        "@weekly" => ["0", "0", "*", "*", "0"],
        "@daily" | "@midnight" => ["0", "0", "*", "*", "*"],
        "@hourly" => ["0", "*", "*", "*", "*"],
        "@reboot" => {
            return Err(CronError::UnsupportedAlias {
                alias: alias.to_string(),
            })
        }
        _ => {
            return Err(CronError::UnknownAlias {
                alias: alias.to_string(),
            })
        }
    };
    Ok(fields)
}

/// Parses one field into a bit set of its values (day-of-week 7 folded
/// into 0).
fn parse_field(field: Field, text: &str) -> Result<u64, CronError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CronError::EmptyField {
            field,
            text: text.to_string(),
        });
    }
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::EmptyItem {
                field,
                text: text.to_string(),
            });
        }
        bits |= parse_item(field, item)?;
    }
    if field == Field::DayOfWeek && has(bits, 7) {
        bits = (bits & !(1 << 7)) | 1;
    }
    Ok(bits)
}

/// Parses one list item: `*`, `v`, `a-b`, each optionally with `/step`.
fn parse_item(field: Field, item: &str) -> Result<u64, CronError> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, item, step)?)),
        None => (item, None),
    };
    let (start, end) = if range == "*" {
        (field.min(), field.max())
    } else if let Some((a, b)) = range.split_once('-') {
        let start = parse_value(field, a, item)?;
        let end = parse_value(field, b, item)?;
        if start > end {
            return Err(CronError::ReversedRange {
                field,
                text: item.to_string(),
                start,
                end,
            });
        }
        (start, end)
    } else {
        let value = parse_value(field, range, item)?;
        // `a/n` means `a-max/n`.
        (value, if step.is_some() { field.max() } else { value })
    };
    let step = usize::try_from(step.unwrap_or(1)).unwrap_or(usize::MAX);
    Ok((start..=end)
        .step_by(step)
        .fold(0, |bits, v| bits | (1 << v)))
}

/// Parses a step (the text after `/`).
fn parse_step(field: Field, item: &str, step: &str) -> Result<u32, CronError> {
    let invalid = || CronError::InvalidStep {
        field,
        text: item.to_string(),
        step: step.to_string(),
    };
    if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match step.parse::<u32>() {
        Ok(0) => Err(CronError::ZeroStep {
            field,
            text: item.to_string(),
        }),
        Ok(n) => Ok(n),
        Err(_) => Err(invalid()),
    }
}

/// Parses a number or a name of the field and checks its range.
fn parse_value(field: Field, text: &str, item: &str) -> Result<u32, CronError> {
    if text.is_empty() {
        return Err(CronError::InvalidValue {
            field,
            value: item.to_string(),
        });
    }
    let out_of_range = || CronError::OutOfRange {
        field,
        value: text.to_string(),
        min: field.min(),
        max: field.max(),
    };
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.parse::<u32>().map_err(|_| out_of_range())?;
        if value < field.min() || value > field.max() {
            return Err(out_of_range());
        }
        return Ok(value);
    }
    let (names, first) = field.names();
    names
        .iter()
        .zip(first..)
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|(_, value)| value)
        .ok_or_else(|| CronError::InvalidValue {
            field,
            value: text.to_string(),
        })
}

/// Renders a bit set canonically: `*` when full, otherwise ascending items
/// with runs of three or more written as ranges.
fn render(field: Field, bits: u64) -> String {
    if bits == field.full() {
        return "*".to_string();
    }
    let values: Vec<u32> = (field.min()..=field.max())
        .filter(|&v| has(bits, v))
        .collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            items.push(format!("{}-{}", values[i], values[j]));
        } else {
            items.extend(values[i..=j].iter().map(u32::to_string));
        }
        i = j + 1;
    }
    items.join(",")
}

fn has(bits: u64, value: u32) -> bool {
    value < 64 && bits & (1 << value) != 0
}

/// The smallest value in `bits` that is at least `from`.
fn next_bit(bits: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = bits & (u64::MAX << from);
    (rest != 0).then(|| rest.trailing_zeros())
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Australia::Lord_Howe, Europe::Berlin};
    use proptest::prelude::*;

    const FMT: &str = "%Y-%m-%d %H:%M";

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, FMT)
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S"))
            .unwrap()
            .and_utc()
    }

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, FMT).unwrap()
    }

    fn show(t: DateTime<Utc>) -> String {
        t.format(FMT).to_string()
    }

    fn next(expr: &str, from: &str) -> String {
        let s = Schedule::parse(expr).unwrap();
        show(s.next_after(utc(from)).unwrap())
    }

    fn take(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        s.upcoming(utc(from)).take(n).map(show).collect()
    }

    fn err(expr: &str) -> String {
        Schedule::parse(expr).unwrap_err().to_string()
    }

    #[test]
    fn next_after_table() {
        let cases: &[(&str, &str, &str)] = &[
            // star, strictly after, seconds ignored
            ("* * * * *", "2025-01-01 00:00", "2025-01-01 00:01"),
            ("* * * * *", "2025-01-01 00:00:30", "2025-01-01 00:01"),
            ("* * * * *", "2025-01-01 00:00:59", "2025-01-01 00:01"),
            // single values
            ("5 * * * *", "2025-01-01 10:04", "2025-01-01 10:05"),
            ("5 * * * *", "2025-01-01 10:05", "2025-01-01 11:05"),
            ("0 12 * * *", "2025-01-01 12:00", "2025-01-02 12:00"),
            // lists
            ("0,15,45 * * * *", "2025-01-01 10:16", "2025-01-01 10:45"),
            ("0,15,45 * * * *", "2025-01-01 10:45", "2025-01-01 11:00"),
            ("0 8,20 * * *", "2025-01-01 08:00", "2025-01-01 20:00"),
            // ranges
            ("10-12 * * * *", "2025-01-01 10:11", "2025-01-01 10:12"),
            ("10-12 * * * *", "2025-01-01 10:12", "2025-01-01 11:10"),
            ("0 9-17 * * *", "2025-01-01 17:00", "2025-01-02 09:00"),
            ("0 0 10-12 * *", "2025-01-12 00:00", "2025-02-10 00:00"),
            // */n starts at the minimum
            ("*/15 * * * *", "2025-01-01 10:46", "2025-01-01 11:00"),
            ("0 */6 * * *", "2025-01-01 13:00", "2025-01-01 18:00"),
            ("0 0 */7 * *", "2025-01-01 00:00", "2025-01-08 00:00"),
            ("0 0 * */5 *", "2025-02-01 00:00", "2025-06-01 00:00"),
            // a-b/n starts at a
            ("10-30/7 * * * *", "2025-01-01 10:00", "2025-01-01 10:10"),
            ("10-30/7 * * * *", "2025-01-01 10:10", "2025-01-01 10:17"),
            ("10-30/7 * * * *", "2025-01-01 10:24", "2025-01-01 11:10"),
            ("0 9-17/4 * * *", "2025-01-01 13:00", "2025-01-01 17:00"),
            ("0 9-17/4 * * *", "2025-01-01 17:00", "2025-01-02 09:00"),
            // a/n = a-max/n
            ("50/5 * * * *", "2025-01-01 10:00", "2025-01-01 10:50"),
            ("50/5 * * * *", "2025-01-01 10:50", "2025-01-01 10:55"),
            ("50/5 * * * *", "2025-01-01 10:55", "2025-01-01 11:50"),
            ("0 0 25/3 * *", "2025-01-26 00:00", "2025-01-28 00:00"),
            ("0 0 25/3 * *", "2025-01-31 00:00", "2025-02-25 00:00"),
            // month names, mixed case, in lists and ranges
            ("0 0 1 jAn,Jul *", "2025-02-01 00:00", "2025-07-01 00:00"),
            ("0 0 1 Mar-may *", "2025-06-01 00:00", "2026-03-01 00:00"),
            ("0 0 1 DEC *", "2025-06-01 00:00", "2025-12-01 00:00"),
            ("0 0 1 feb-DEC/2 *", "2025-02-01 00:00", "2025-04-01 00:00"),
            // weekday names (2025-03-01 is a Saturday)
            ("0 9 * * Mon-FRI", "2025-03-01 00:00", "2025-03-03 09:00"),
            ("0 9 * * Mon-FRI", "2025-03-07 09:00", "2025-03-10 09:00"),
            ("0 9 * * sat,SUN", "2025-03-03 00:00", "2025-03-08 09:00"),
            ("0 9 * * wed", "2025-03-03 00:00", "2025-03-05 09:00"),
            // Sunday as 0 and as 7
            ("0 0 * * 0", "2025-03-03 00:00", "2025-03-09 00:00"),
            ("0 0 * * 7", "2025-03-03 00:00", "2025-03-09 00:00"),
            ("0 0 * * 5-7", "2025-03-09 00:00", "2025-03-14 00:00"),
            ("0 0 * * 6-7", "2025-03-08 00:00", "2025-03-09 00:00"),
            ("0 0 * * 1/2", "2025-03-07 00:00", "2025-03-09 00:00"),
            // aliases
            ("@yearly", "2025-06-01 00:00", "2026-01-01 00:00"),
            ("@annually", "2025-06-01 00:00", "2026-01-01 00:00"),
            ("@monthly", "2025-06-15 00:00", "2025-07-01 00:00"),
            ("@weekly", "2025-06-04 00:00", "2025-06-08 00:00"),
            ("@daily", "2025-06-04 12:00", "2025-06-05 00:00"),
            ("@midnight", "2025-06-04 12:00", "2025-06-05 00:00"),
            ("@hourly", "2025-06-04 12:30", "2025-06-04 13:00"),
            ("@hourly", "2025-06-04 12:00", "2025-06-04 13:00"),
            // month and year boundaries
            ("* * * * *", "2025-12-31 23:59", "2026-01-01 00:00"),
            ("0 0 * * *", "2025-12-31 23:59", "2026-01-01 00:00"),
            ("0 0 1 * *", "2025-01-31 12:00", "2025-02-01 00:00"),
            ("0 0 31 * *", "2025-01-31 00:00", "2025-03-31 00:00"),
            ("59 23 31 12 *", "2025-12-31 23:59", "2026-12-31 23:59"),
            // leap years
            ("0 0 29 2 *", "2025-03-01 00:00", "2028-02-29 00:00"),
            ("0 0 29 2 *", "2024-01-01 00:00", "2024-02-29 00:00"),
            ("0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00"),
            // OR of the day fields once both are restricted
            ("0 0 31 2 1", "2025-01-01 00:00", "2025-02-03 00:00"),
            ("0 0 13 * 5", "2025-06-01 00:00", "2025-06-06 00:00"),
            // AND when a day field starts with `*`
            ("30 4 */1 * 5", "2025-03-01 00:00", "2025-03-07 04:30"),
            ("0 0 */2 * 1", "2025-03-03 00:00", "2025-03-17 00:00"),
        ];
        for &(expr, from, want) in cases {
            assert_eq!(next(expr, from), want, "`{expr}` after {from}");
        }
    }

    #[test]
    fn every_seventh_day_is_standard_cron() {
        let s = Schedule::parse("0 0 */7 * *").unwrap();
        assert_eq!(
            take(&s, "2025-01-01 00:00", 9),
            [
                "2025-01-08 00:00",
                "2025-01-15 00:00",
                "2025-01-22 00:00",
                "2025-01-29 00:00",
                "2025-02-01 00:00",
                "2025-02-08 00:00",
                "2025-02-15 00:00",
                "2025-02-22 00:00",
                "2025-03-01 00:00",
            ]
        );
    }

    #[test]
    fn plain_jobs_documented_day_cases() {
        // 1st and 15th plus every Friday (2025-03-01 is a Saturday).
        let or = Schedule::parse("30 4 1,15 * 5").unwrap();
        assert_eq!(
            take(&or, "2025-03-01 04:30", 6),
            [
                "2025-03-07 04:30",
                "2025-03-14 04:30",
                "2025-03-15 04:30",
                "2025-03-21 04:30",
                "2025-03-28 04:30",
                "2025-04-01 04:30",
            ]
        );
        // `*/1` is a star field: AND with every weekday, so only 1st and 15th.
        let and = Schedule::parse("30 4 1,15 * */1").unwrap();
        assert_eq!(
            take(&and, "2025-03-01 04:30", 4),
            [
                "2025-03-15 04:30",
                "2025-04-01 04:30",
                "2025-04-15 04:30",
                "2025-05-01 04:30",
            ]
        );
    }

    #[test]
    fn builder_and_by_default_or_on_request() {
        let and = Schedule::builder()
            .minute("30")
            .hour("4")
            .day_of_month("1,15")
            .day_of_week("5")
            .build()
            .unwrap();
        // The first 1st or 15th that is a Friday after 2025-03-01.
        assert_eq!(take(&and, "2025-03-01 00:00", 1), ["2025-08-01 04:30"]);
        assert_eq!(and.expression(), "30 4 1,15 * 5");

        let or = Schedule::builder()
            .minute("30")
            .hour("4")
            .day_of_month("1,15")
            .day_of_week("fri")
            .day_or(true)
            .build()
            .unwrap();
        assert_eq!(
            take(&or, "2025-03-01 04:30", 3),
            ["2025-03-07 04:30", "2025-03-14 04:30", "2025-03-15 04:30"]
        );
        assert_ne!(and, or);

        // OR with an unrestricted day field matches every day.
        let every_day = Schedule::builder()
            .minute("0")
            .hour("0")
            .day_of_month("1")
            .day_or(true)
            .build()
            .unwrap();
        assert_eq!(every_day, Schedule::parse("0 0 * * *").unwrap());
    }

    #[test]
    fn builder_renders_canonically() {
        let s = Schedule::builder()
            .minute("*/15")
            .hour("9-17")
            .day_of_week("mon-FRI")
            .month("jan,feb,Mar,7")
            .timezone(Berlin)
            .build()
            .unwrap();
        assert_eq!(s.expression(), "0,15,30,45 9-17 * 1-3,7 1-5");
        assert_eq!(s.to_string(), s.expression());
        assert_eq!(s.timezone(), Berlin);
        let default = Schedule::builder().build().unwrap();
        assert_eq!(default.expression(), "* * * * *");
        assert_eq!(default, Schedule::parse("* * * * *").unwrap());
        let sunday = Schedule::builder().day_of_week("7,6").build().unwrap();
        assert_eq!(sunday.expression(), "* * * * 0,6");
    }

    #[test]
    fn parse_display_from_str_and_whitespace() {
        let s: Schedule = "  0\t0  * *   *\t".parse().unwrap();
        assert_eq!(s.expression(), "0\t0  * *   *");
        assert_eq!(s.to_string(), s.expression());
        assert_eq!(s.timezone(), Tz::UTC);
        assert_eq!(
            show(s.next_after(utc("2025-01-01 00:00")).unwrap()),
            "2025-01-02 00:00"
        );
        let alias = Schedule::parse(" @daily ").unwrap();
        assert_eq!(alias.to_string(), "@daily");
        assert_eq!(Schedule::parse("@DAILY").unwrap().to_string(), "@DAILY");
        let reparsed = Schedule::parse(&s.to_string()).unwrap();
        assert_eq!(reparsed, s);
    }

    #[test]
    fn matches_local_ignores_seconds() {
        let s = Schedule::parse("30 4 1,15 * 5").unwrap();
        assert!(s.matches_local(naive("2025-03-07 04:30")));
        assert!(s.matches_local(naive("2025-03-07 04:30").with_second(45).unwrap()));
        assert!(s.matches_local(naive("2025-03-15 04:30")));
        assert!(!s.matches_local(naive("2025-03-08 04:30")));
        assert!(!s.matches_local(naive("2025-03-07 04:31")));
        // Nonexistent wall times still match their fields.
        let gap = Schedule::parse("30 2 * * *")
            .unwrap()
            .with_timezone(New_York);
        assert!(gap.matches_local(naive("2025-03-09 02:30")));
    }

    #[test]
    fn doc_example() {
        let schedule: Schedule = "30 4 1,15 * 5".parse().unwrap();
        let schedule = schedule.with_timezone(Berlin);
        let after: DateTime<Utc> = "2025-03-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            schedule.next_after(after),
            Some("2025-03-07T03:30:00Z".parse().unwrap())
        );
    }

    #[test]
    fn errors_name_field_and_value() {
        let cases: &[(&str, &[&str])] = &[
            ("* * * *", &["5 fields", "got 4"]),
            ("* * * * * *", &["got 6"]),
            ("", &["got 0"]),
            ("@daily 1", &["got 2"]),
            ("70 * * * *", &["minute", "70", "0-59"]),
            ("1-70 * * * *", &["minute", "70"]),
            ("* 24 * * *", &["hour", "24", "0-23"]),
            ("* * 0 * *", &["day-of-month", "0", "1-31"]),
            ("* * 32 * *", &["day-of-month", "32"]),
            ("* * * 13 *", &["month", "13", "1-12"]),
            ("* * * 0 *", &["month", "0"]),
            ("* * * * 8", &["day-of-week", "8", "0-7"]),
            ("99999999999 * * * *", &["minute", "99999999999"]),
            ("5-1 * * * *", &["minute", "5-1", "reversed"]),
            ("* * * * fri-mon", &["day-of-week", "fri-mon", "reversed"]),
            ("*/0 * * * *", &["minute", "*/0", "at least 1"]),
            ("* 1-5/0 * * *", &["hour", "1-5/0"]),
            ("*/x * * * *", &["minute", "`x`", "*/x"]),
            ("* */-1 * * *", &["hour", "-1"]),
            ("* * * */ *", &["month", "*/"]),
            ("* * * FOO *", &["month", "FOO", "JAN-DEC"]),
            ("* * * * FOO", &["day-of-week", "FOO", "SUN-SAT"]),
            ("* * * * monday", &["day-of-week", "monday"]),
            ("* * mon * *", &["day-of-month", "mon"]),
            ("1,,2 * * * *", &["minute", "empty list item", "1,,2"]),
            ("* 1, * * *", &["hour", "empty list item", "1,"]),
            ("* * * ,1 *", &["month", "empty list item", ",1"]),
            ("-5 * * * *", &["minute", "-5"]),
            ("*-5 * * * *", &["minute", "*"]),
            ("1-2-3 * * * *", &["minute", "2-3"]),
            ("0 0 30 2 *", &["day-of-month", "30", "month", "2", "never"]),
            ("0 0 31 2 *", &["day-of-month", "31", "month", "2", "never"]),
            ("0 0 31 4 *", &["day-of-month", "31", "month", "4", "never"]),
            (
                "0 0 30,31 feb *",
                &["day-of-month", "30,31", "feb", "never"],
            ),
            (
                "0 0 31 4,6,9 */1",
                &["day-of-month", "31", "4,6,9", "never"],
            ),
            ("@reboot", &["@reboot", "not supported"]),
            ("@fortnightly", &["@fortnightly", "unknown alias"]),
        ];
        for &(expr, needles) in cases {
            let message = err(expr);
            for needle in needles {
                assert!(
                    message.contains(needle),
                    "error for `{expr}` is `{message}`, lacks `{needle}`"
                );
            }
        }
    }

    #[test]
    fn fireable_day_combinations_are_accepted() {
        for expr in [
            "0 0 29 2 *",
            "0 0 31 2 1",
            "0 0 30 2 mon",
            "0 0 31 */2 *",
            "0 0 28-31 2 *",
            "0 0 31 4,5 *",
        ] {
            assert!(Schedule::parse(expr).is_ok(), "{expr}");
        }
    }

    #[test]
    fn builder_errors_name_field_and_value() {
        let cases: Vec<(Result<Schedule, CronError>, &[&str])> = vec![
            (Schedule::builder().hour("25").build(), &["hour", "25"]),
            (Schedule::builder().minute("").build(), &["minute", "empty"]),
            (Schedule::builder().month("Foo").build(), &["month", "Foo"]),
            (
                Schedule::builder().day_of_week("1 , 2").build(),
                &["day-of-week", "1 "],
            ),
            (
                Schedule::builder()
                    .day_of_month("31")
                    .month("apr")
                    .day_of_week("1")
                    .build(),
                &["day-of-month", "31", "apr", "never"],
            ),
        ];
        for (result, needles) in cases {
            let message = result.unwrap_err().to_string();
            for needle in needles {
                assert!(message.contains(needle), "`{message}` lacks `{needle}`");
            }
        }
        // With OR the restricted day-of-week makes it fire.
        assert!(Schedule::builder()
            .day_of_month("31")
            .month("apr")
            .day_of_week("1")
            .day_or(true)
            .build()
            .is_ok());
    }

    #[test]
    fn error_is_structured() {
        assert_eq!(
            Schedule::parse("70 * * * *").unwrap_err(),
            CronError::OutOfRange {
                field: Field::Minute,
                value: "70".to_string(),
                min: 0,
                max: 59
            }
        );
    }

    #[test]
    fn new_york_spring_forward_gap() {
        // 2025-03-09: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let s = Schedule::parse("30 2 * * *")
            .unwrap()
            .with_timezone(New_York);
        assert_eq!(
            take(&s, "2025-03-08 08:00", 3),
            ["2025-03-09 07:00", "2025-03-10 06:30", "2025-03-11 06:30"]
        );
        // Several nonexistent matches collapse into one firing.
        let s = Schedule::parse("0,30 2 * * *")
            .unwrap()
            .with_timezone(New_York);
        assert_eq!(
            take(&s, "2025-03-09 05:00", 3),
            ["2025-03-09 07:00", "2025-03-10 06:00", "2025-03-10 06:30"]
        );
        // ... together with a match at the first valid time after the gap.
        let s = Schedule::parse("0,30 2,3 * * *")
            .unwrap()
            .with_timezone(New_York);
        assert_eq!(
            take(&s, "2025-03-09 05:00", 3),
            ["2025-03-09 07:00", "2025-03-09 07:30", "2025-03-10 06:00"]
        );
        // Asking from inside the collapsed firing moves on.
        assert_eq!(
            show(s.next_after(utc("2025-03-09 07:00")).unwrap()),
            "2025-03-09 07:30"
        );
    }

    #[test]
    fn new_york_fall_back_fires_once_at_earlier_instant() {
        // 2025-11-02: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        let s = Schedule::parse("30 1 * * *")
            .unwrap()
            .with_timezone(New_York);
        let firings = take(&s, "2025-11-01 04:00", 3);
        assert_eq!(
            firings,
            ["2025-11-01 05:30", "2025-11-02 05:30", "2025-11-03 06:30"]
        );
        let on_the_day = s
            .upcoming(utc("2025-11-01 12:00"))
            .take_while(|t| *t < utc("2025-11-03 12:00"))
            .filter(|t| t.with_timezone(&New_York).day() == 2)
            .count();
        assert_eq!(on_the_day, 1);
        // From inside the repeated hour, the repeat does not fire.
        assert_eq!(
            show(s.next_after(utc("2025-11-02 06:00")).unwrap()),
            "2025-11-03 06:30"
        );
    }

    #[test]
    fn half_hourly_through_new_york_transitions() {
        let s = Schedule::parse("*/30 * * * *")
            .unwrap()
            .with_timezone(New_York);
        assert_eq!(
            take(&s, "2025-03-09 06:00", 3),
            ["2025-03-09 06:30", "2025-03-09 07:00", "2025-03-09 07:30"]
        );
        assert_eq!(
            take(&s, "2025-11-02 04:30", 4),
            [
                "2025-11-02 05:00",
                "2025-11-02 05:30",
                "2025-11-02 07:00",
                "2025-11-02 07:30"
            ]
        );
        for from in ["2025-03-08 00:00", "2025-11-01 00:00"] {
            let firings: Vec<_> = s.upcoming(utc(from)).take(200).collect();
            assert!(firings.windows(2).all(|w| w[0] < w[1]), "{from}");
        }
    }

    #[test]
    fn berlin_transitions() {
        // 2025-03-30: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let s = Schedule::parse("30 2 * * *").unwrap().with_timezone(Berlin);
        assert_eq!(
            take(&s, "2025-03-29 12:00", 2),
            ["2025-03-30 01:00", "2025-03-31 00:30"]
        );
        // 2025-10-26: 03:00 CEST falls back to 02:00 CET (01:00 UTC).
        assert_eq!(
            take(&s, "2025-10-25 12:00", 2),
            ["2025-10-26 00:30", "2025-10-27 01:30"]
        );
        let s = Schedule::parse("*/30 * * * *")
            .unwrap()
            .with_timezone(Berlin);
        assert_eq!(
            take(&s, "2025-03-30 00:00", 3),
            ["2025-03-30 00:30", "2025-03-30 01:00", "2025-03-30 01:30"]
        );
        assert_eq!(
            take(&s, "2025-10-26 00:00", 3),
            ["2025-10-26 00:30", "2025-10-26 02:00", "2025-10-26 02:30"]
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // 2025-10-05: 02:00 (+10:30) jumps to 02:30 (+11), at 15:30 UTC.
        let s = Schedule::parse("15 2 * * *")
            .unwrap()
            .with_timezone(Lord_Howe);
        assert_eq!(
            take(&s, "2025-10-04 12:00", 2),
            ["2025-10-04 15:30", "2025-10-05 15:15"]
        );
    }

    // ---- property test ----

    /// A value of a field as (number, text), the text sometimes a name in
    /// random case.
    fn value(field: Field) -> BoxedStrategy<(u32, String)> {
        let (names, first) = field.names();
        let number = (field.min()..=field.max())
            .prop_map(|v| (v, v.to_string()))
            .boxed();
        if names.is_empty() {
            return number;
        }
        let named = (0..names.len(), 0..3u8)
            .prop_map(move |(i, case)| {
                let name = names[i];
                let text = match case {
                    0 => name.to_string(),
                    1 => name.to_ascii_lowercase(),
                    _ => format!("{}{}", &name[..1], name[1..].to_ascii_lowercase()),
                };
                (first + i as u32, text)
            })
            .boxed();
        prop_oneof![number, named].boxed()
    }

    fn range(field: Field) -> impl Strategy<Value = String> {
        (value(field), value(field)).prop_map(|(a, b)| {
            let (lo, hi) = if a.0 <= b.0 { (a, b) } else { (b, a) };
            format!("{}-{}", lo.1, hi.1)
        })
    }

    fn item(field: Field) -> BoxedStrategy<String> {
        let span = field.max() - field.min() + 1;
        prop_oneof![
            value(field).prop_map(|v| v.1),
            range(field),
            (range(field), 1..=span).prop_map(|(r, n)| format!("{r}/{n}")),
            (value(field), 1..=span).prop_map(|(v, n)| format!("{}/{n}", v.1)),
        ]
        .boxed()
    }

    fn field_text(field: Field) -> BoxedStrategy<String> {
        let span = field.max() - field.min() + 1;
        let list = prop::collection::vec(item(field), 1..4).prop_map(|items| items.join(","));
        let restricted = prop_oneof![item(field), list, (1..=span).prop_map(|n| format!("*/{n}")),];
        match field {
            // Keep day and month mostly unrestricted so firings are frequent
            // enough for the brute-force check.
            Field::DayOfMonth | Field::Month => {
                prop_oneof![3 => Just("*".to_string()), 1 => restricted].boxed()
            }
            _ => prop_oneof![1 => Just("*".to_string()), 3 => restricted].boxed(),
        }
    }

    fn expression() -> impl Strategy<Value = String> {
        let fields = (
            field_text(Field::Minute),
            field_text(Field::Hour),
            field_text(Field::DayOfMonth),
            field_text(Field::Month),
            field_text(Field::DayOfWeek),
            prop::sample::select(vec![" ", "\t", "  "]),
        )
            .prop_map(|(m, h, dom, mon, dow, sep)| [m, h, dom, mon, dow].join(sep));
        let alias = prop::sample::select(vec![
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ])
        .prop_map(str::to_string);
        prop_oneof![20 => fields, 1 => alias]
    }

    const ZONES: [Tz; 4] = [Tz::UTC, New_York, Berlin, Lord_Howe];

    fn local(tz: Tz, u: DateTime<Utc>) -> NaiveDateTime {
        u.with_timezone(&tz).naive_local()
    }

    fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
        t.with_second(0).unwrap().with_nanosecond(0).unwrap()
    }

    /// The latest wall time shown at any instant up to `u`, looking back far
    /// enough to see across a repeated hour.
    fn high_water(tz: Tz, u: DateTime<Utc>) -> NaiveDateTime {
        let base = floor_minute(u.naive_utc()).and_utc();
        (0..=240)
            .map(|k| local(tz, base - TimeDelta::minutes(k)))
            .fold(local(tz, u), NaiveDateTime::max)
    }

    /// Whether a wall minute in (`hwm`, `cur`] matches: the instant showing
    /// `cur` first is where those wall times fire.
    fn covers_match(s: &Schedule, hwm: NaiveDateTime, cur: NaiveDateTime) -> bool {
        let mut w = floor_minute(hwm) + TimeDelta::minutes(1);
        while w <= cur {
            if s.matches_local(w) {
                return true;
            }
            w += TimeDelta::minutes(1);
        }
        false
    }

    /// Brute force: the first whole UTC minute in (t, limit] that fires.
    fn brute_next(s: &Schedule, t: DateTime<Utc>, limit: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz = s.timezone();
        let mut hwm = high_water(tz, t);
        let mut u = floor_minute(t.naive_utc()).and_utc() + TimeDelta::minutes(1);
        while u <= limit {
            let cur = local(tz, u);
            if cur > hwm {
                if covers_match(s, hwm, cur) {
                    return Some(u);
                }
                hwm = cur;
            }
            u += TimeDelta::minutes(1);
        }
        None
    }

    /// UTC instants in 2000-2040 where a zone's offset changes.
    fn transitions(tz: Tz) -> Vec<DateTime<Utc>> {
        let offset = |u: DateTime<Utc>| local(tz, u) - u.naive_utc();
        let mut out = Vec::new();
        let mut day = utc("2000-01-01 00:00");
        let end = utc("2041-01-01 00:00");
        while day < end {
            let next_day = day + TimeDelta::days(1);
            if offset(day) != offset(next_day) {
                let (mut lo, mut hi) = (day, next_day);
                while hi - lo > TimeDelta::minutes(1) {
                    let mid = lo + (hi - lo) / 2;
                    if offset(mid) == offset(lo) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                out.push(hi);
            }
            day = next_day;
        }
        out
    }

    fn all_transitions() -> &'static [Vec<DateTime<Utc>>] {
        static CELL: std::sync::OnceLock<Vec<Vec<DateTime<Utc>>>> = std::sync::OnceLock::new();
        CELL.get_or_init(|| ZONES.iter().map(|&tz| transitions(tz)).collect())
    }

    /// A start time: uniform in 2000-2040, or shortly before (up to four
    /// hours) or after (up to two hours) one of the zone's offset changes.
    fn start_time() -> impl Strategy<Value = (usize, DateTime<Utc>)> {
        let start = utc("2000-01-01 00:00").timestamp();
        let end = utc("2040-12-31 23:59").timestamp();
        (
            0..ZONES.len(),
            any::<bool>(),
            start..end,
            any::<prop::sample::Index>(),
            -14_400i64..7_200,
        )
            .prop_map(|(zone, near, uniform, index, shift)| {
                let transitions = &all_transitions()[zone];
                let secs = if near && !transitions.is_empty() {
                    index.get(transitions).timestamp() + shift
                } else {
                    uniform
                };
                (zone, DateTime::from_timestamp(secs, 0).unwrap())
            })
    }

    /// How far the brute force searches.
    const BRUTE_SPAN_DAYS: i64 = 21;

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn next_after_is_the_first_firing(expr in expression(), (zone, t) in start_time()) {
            let tz = ZONES[zone];
            let s = match Schedule::parse(&expr) {
                Ok(s) => s.with_timezone(tz),
                Err(CronError::NeverFires { .. }) => return Err(TestCaseError::reject("never fires")),
                Err(e) => return Err(TestCaseError::fail(format!("`{expr}`: {e}"))),
            };
            prop_assert_eq!(Schedule::parse(&s.to_string()).map(|p| p.with_timezone(tz)), Ok(s.clone()));
            let n = s.next_after(t).expect("a valid schedule fires");
            prop_assert!(n > t);
            prop_assert_eq!(n.second(), 0);
            prop_assert_eq!(n.nanosecond(), 0);
            // It fires at `n`: its wall time matches, or it ends a gap that
            // contains a matching wall time; not a repeat of an earlier time.
            let before = high_water(tz, n - TimeDelta::minutes(1));
            prop_assert!(covers_match(&s, before, local(tz, n)), "`{}` in {} after {}: {}", expr, tz, t, n);
            let limit = t + TimeDelta::days(BRUTE_SPAN_DAYS);
            let brute = brute_next(&s, t, n.min(limit));
            if n <= limit {
                prop_assert_eq!(brute, Some(n), "`{}` in {} after {}", expr, tz, t);
            } else {
                prop_assert_eq!(brute, None, "`{}` in {} after {}", expr, tz, t);
            }
        }
    }
}
