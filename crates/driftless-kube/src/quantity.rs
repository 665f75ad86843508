//! Kubernetes resource quantities, compared by value.
//!
//! The API server stores quantities in canonical form (`cpu: 1000m` reads
//! back as `"1"`, `cpu: 0.5` as `"500m"`, the number `1` as the string `"1"`),
//! so a manifest and its live object may spell the same value differently.

use serde_json::Value;

/// Keys of maps whose values are quantities (container resources, quotas,
/// limit ranges, node and volume capacity).
const QUANTITY_MAPS: &[&str] = &[
    "limits",
    "requests",
    "hard",
    "capacity",
    "allocatable",
    "default",
    "defaultRequest",
    "max",
    "min",
    "maxLimitRequestRatio",
    "overhead",
];

/// Fields that are quantities themselves.
const QUANTITY_FIELDS: &[&str] = &["sizeLimit"];

/// Whether the field `key`, inside the map under `parent`, holds a quantity.
pub(crate) fn is_quantity_field(parent: Option<&str>, key: Option<&str>) -> bool {
    parent.is_some_and(|p| QUANTITY_MAPS.contains(&p))
        || key.is_some_and(|k| QUANTITY_FIELDS.contains(&k))
}

/// Whether two JSON values are the same quantity, however written.
pub(crate) fn same_quantity(a: &Value, b: &Value) -> bool {
    match (nanos(a), nanos(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn nanos(value: &Value) -> Option<i128> {
    match value {
        Value::String(s) => parse(s),
        Value::Number(n) => parse(&n.to_string()),
        _ => None,
    }
}

/// The value of a quantity in units of 10^-9, when it is exactly representable.
pub(crate) fn parse(text: &str) -> Option<i128> {
    let text = text.trim();
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(digits_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let (exp10, exp2) = suffix_exponents(suffix)?;
    let exp10 = exp10 + 9 - i32::try_from(fraction.len()).ok()?;
    let mut value = mantissa.checked_mul(2i128.checked_pow(exp2)?)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp10.unsigned_abs())?)?;
    } else {
        let divisor = 10i128.checked_pow(exp10.unsigned_abs())?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    Some(if negative { -value } else { value })
}

/// Decimal and binary exponents of a suffix: `m` is 10^-3, `Ki` is 2^10,
/// `e3`/`E3` is 10^3 (an `E` alone is exa).
fn suffix_exponents(suffix: &str) -> Option<(i32, u32)> {
    let decimal = |e: i32| Some((e, 0));
    let binary = |e: u32| Some((0, e));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        other => {
            let exponent = other.strip_prefix(['e', 'E'])?;
            exponent
                .parse::<i32>()
                .ok()
                .filter(|e| e.abs() <= 18)
                .map(|e| (e, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_and_written_forms_are_the_same_quantity() {
        for (a, b) in [
            (json!(1), json!("1")),
            (json!("1000m"), json!("1")),
            (json!(0.5), json!("500m")),
            (json!("0.5"), json!("500m")),
            (json!("1Gi"), json!("1073741824")),
            (json!("1e3"), json!("1k")),
            (json!("128Mi"), json!("128Mi")),
            (json!("1.5Gi"), json!("1536Mi")),
        ] {
            assert!(same_quantity(&a, &b), "{a} == {b}");
        }
    }

    #[test]
    fn different_quantities_and_non_quantities_differ() {
        for (a, b) in [
            (json!("1G"), json!("1Gi")),
            (json!("100m"), json!("1")),
            (json!("abc"), json!("abc")),
            (json!("1x"), json!("1")),
            (json!(""), json!("0")),
        ] {
            assert!(!same_quantity(&a, &b), "{a} != {b}");
        }
        assert_eq!(parse("-2m"), Some(-2_000_000));
        assert_eq!(parse("1n"), Some(1));
        assert_eq!(parse("0.1n"), None, "below a nano is not exact");
    }

    #[test]
    fn only_resource_maps_hold_quantities() {
        assert!(is_quantity_field(Some("limits"), Some("cpu")));
        assert!(is_quantity_field(Some("emptyDir"), Some("sizeLimit")));
        assert!(!is_quantity_field(Some("labels"), Some("version")));
        assert!(!is_quantity_field(None, None));
    }
}
