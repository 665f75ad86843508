//! Five-field cron schedules (`minute hour day-of-month month day-of-week`)
//! as crontab(5) reads them: `*`, numbers, ranges, steps, lists, month and
//! weekday names, 7 for Sunday, and the `@hourly`-style shorthands. When
//! both day fields are restricted, a day matching either one fires, as in
//! cron.

use std::str::FromStr;

use jiff::civil::{DateTime, Weekday};

/// A parsed schedule: the minutes it fires at, in civil (wall-clock) time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    /// The day-of-month field was `*` (or a `*/n` step).
    any_day: bool,
    /// The day-of-week field was `*` (or a `*/n` step).
    any_weekday: bool,
}

/// Why a schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron schedule {text:?}: {problem}")]
pub struct CronError {
    /// The schedule as written.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's name, bounds and value names.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: &MONTHS,
    },
    // 7 is Sunday as well as 0.
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: &WEEKDAYS,
    },
];

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |problem: String| CronError {
            text: text.to_owned(),
            problem,
        };
        let expanded = match text.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                parts.len()
            )));
        }
        let mut bits = [0u64; 5];
        for (i, (part, field)) in parts.iter().zip(&FIELDS).enumerate() {
            bits[i] = parse_field(part, field).map_err(err)?;
        }
        let weekdays = bits[4] | (bits[4] >> 7);
        // Each mask holds only bits up to its field's maximum (59 at most).
        let narrow = |b: u64| u32::try_from(b).unwrap_or(u32::MAX);
        Ok(Self {
            minutes: bits[0],
            hours: narrow(bits[1]),
            days: narrow(bits[2]),
            months: u16::try_from(bits[3]).unwrap_or(u16::MAX),
            weekdays: u8::try_from(weekdays & 0x7f).unwrap_or(u8::MAX),
            any_day: parts[2].starts_with('*'),
            any_weekday: parts[4].starts_with('*'),
        })
    }
}

/// The bit set of one field's values.
fn parse_field(text: &str, field: &Field) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{}: step {step:?} is not a positive number", field.name)
                })?;
                (range, step)
            }
            None => (item, 1),
        };
        let (low, high) = if range == "*" {
            (field.min, field.max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, field)?, value(b, field)?)
        } else {
            let start = value(range, field)?;
            // `5/15` runs from 5 to the end of the field.
            (start, if item.contains('/') { field.max } else { start })
        };
        if low > high {
            return Err(format!("{}: range {range:?} runs backwards", field.name));
        }
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = field.names.iter().position(|n| *n == lower) {
        return Ok(u32::try_from(i).unwrap_or(0) + field.min);
    }
    match text.parse::<u32>() {
        Ok(v) if (field.min..=field.max).contains(&v) => Ok(v),
        _ => Err(format!(
            "{}: {text:?} is not a value from {} to {}",
            field.name, field.min, field.max
        )),
    }
}

impl Schedule {
    /// Whether the schedule fires at the minute of `at` (seconds ignored).
    pub fn fires_at(&self, at: DateTime) -> bool {
        self.fires_on(at)
            && self.hours & (1 << at.hour()) != 0
            && self.minutes & (1 << at.minute()) != 0
    }

    /// Whether the schedule fires at some time of `at`'s day.
    pub fn fires_on(&self, at: DateTime) -> bool {
        if self.months & (1 << at.month()) == 0 {
            return false;
        }
        let day = self.days & (1 << at.day()) != 0;
        let weekday = self.weekdays & (1 << weekday_number(at.weekday())) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (true, false) => weekday,
            (false, true) => day,
            (false, false) => day || weekday,
        }
    }

    /// Whether the schedule fires at some minute of `at`'s hour.
    pub fn fires_in_hour(&self, at: DateTime) -> bool {
        self.fires_on(at) && self.hours & (1 << at.hour()) != 0
    }
}

fn weekday_number(day: Weekday) -> u8 {
    u8::try_from(day.to_sunday_zero_offset()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> DateTime {
        date(y, mo, d).at(h, mi, 0, 0)
    }

    #[test]
    fn fields_ranges_steps_and_names() {
        let s: Schedule = "*/15 9-17 * * mon-fri".parse().expect("valid");
        // 2026-12-07 is a Monday.
        assert!(s.fires_at(at(2026, 12, 7, 9, 0)));
        assert!(s.fires_at(at(2026, 12, 7, 17, 45)));
        assert!(!s.fires_at(at(2026, 12, 7, 17, 50)));
        assert!(!s.fires_at(at(2026, 12, 7, 18, 0)));
        assert!(!s.fires_at(at(2026, 12, 6, 10, 0)), "Sunday");
        let s: Schedule = "30 2 * DEC 7".parse().expect("7 is Sunday");
        assert!(s.fires_at(at(2026, 12, 6, 2, 30)));
        assert!(!s.fires_at(at(2026, 11, 29, 2, 30)), "not December");
        let s: Schedule = "5/20 0 * * *".parse().expect("start/step");
        assert!(s.fires_at(at(2026, 1, 1, 0, 45)));
        assert!(!s.fires_at(at(2026, 1, 1, 0, 0)));
    }

    #[test]
    fn restricted_day_fields_fire_on_either() {
        let s: Schedule = "0 0 13 * fri".parse().expect("valid");
        assert!(s.fires_at(at(2026, 12, 13, 0, 0)), "the 13th, a Sunday");
        assert!(s.fires_at(at(2026, 12, 11, 0, 0)), "a Friday");
        assert!(!s.fires_at(at(2026, 12, 12, 0, 0)));
    }

    #[test]
    fn shorthands() {
        let s: Schedule = "@daily".parse().expect("valid");
        assert!(s.fires_at(at(2026, 3, 4, 0, 0)));
        assert!(!s.fires_at(at(2026, 3, 4, 1, 0)));
    }

    #[test]
    fn bad_schedules_say_which_field() {
        let cases = [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "minute: \"60\" is not a value from 0 to 59"),
            ("* 5-2 * * *", "hour: range \"5-2\" runs backwards"),
            ("* * 0 * *", "day of month: \"0\""),
            ("* * * foo *", "month: \"foo\""),
            ("*/0 * * * *", "minute: step \"0\""),
        ];
        for (text, want) in cases {
            let e = text.parse::<Schedule>().expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
