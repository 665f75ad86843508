//! Recombination of a data key split into key groups (Shamir's secret sharing
//! over GF(2^8), each part ending in its x coordinate, as sops splits it).

/// Multiplication in GF(2^8) reduced by x^8 + x^4 + x^3 + x + 1.
fn mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            product ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    product
}

/// The multiplicative inverse (a^254); zero maps to zero.
fn inverse(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut exponent = 254u8;
    while exponent != 0 {
        if exponent & 1 != 0 {
            result = mul(result, base);
        }
        base = mul(base, base);
        exponent >>= 1;
    }
    result
}

/// Why parts do not recombine.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CombineError {
    /// Fewer than two parts.
    TooFew,
    /// Parts of different lengths, or too short.
    Malformed,
    /// Two parts with the same x coordinate.
    Duplicate,
}

impl std::fmt::Display for CombineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CombineError::TooFew => "fewer than two key group parts",
            CombineError::Malformed => "key group parts of different or too short lengths",
            CombineError::Duplicate => "two key group parts with the same coordinate",
        })
    }
}

/// The secret the parts share: Lagrange interpolation at x = 0, byte by byte.
pub(crate) fn combine(parts: &[Vec<u8>]) -> Result<Vec<u8>, CombineError> {
    if parts.len() < 2 {
        return Err(CombineError::TooFew);
    }
    let len = parts[0].len();
    if len < 2 || parts.iter().any(|p| p.len() != len) {
        return Err(CombineError::Malformed);
    }
    let xs: Vec<u8> = parts.iter().map(|p| p[len - 1]).collect();
    for (i, x) in xs.iter().enumerate() {
        if xs[..i].contains(x) {
            return Err(CombineError::Duplicate);
        }
    }
    let mut secret = vec![0u8; len - 1];
    for (idx, byte) in secret.iter_mut().enumerate() {
        let mut value = 0u8;
        for (i, part) in parts.iter().enumerate() {
            // In characteristic 2, (0 - x_j) / (x_i - x_j) is x_j / (x_i ^ x_j).
            let mut basis = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    basis = mul(basis, mul(xj, inverse(xs[i] ^ xj)));
                }
            }
            value ^= mul(part[idx], basis);
        }
        *byte = value;
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates a polynomial with the given coefficients (constant first) at x.
    fn eval(coefficients: &[u8], x: u8) -> u8 {
        coefficients.iter().rev().fold(0, |acc, &c| mul(acc, x) ^ c)
    }

    #[test]
    fn any_threshold_of_parts_recovers_the_secret() {
        let secret = [7u8, 200, 0, 255];
        let parts: Vec<Vec<u8>> = (1u8..=4)
            .map(|x| {
                let mut part: Vec<u8> = secret
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| eval(&[s, 31 + i as u8, 99 ^ i as u8], x))
                    .collect();
                part.push(x);
                part
            })
            .collect();
        assert_eq!(combine(&parts[1..4]).expect("three parts"), secret);
        assert_eq!(
            combine(&[parts[0].clone(), parts[3].clone(), parts[2].clone()]).expect("three parts"),
            secret
        );
        assert_eq!(combine(&parts[..1]), Err(CombineError::TooFew));
        assert_eq!(
            combine(&[parts[0].clone(), parts[0].clone()]),
            Err(CombineError::Duplicate)
        );
    }

    #[test]
    fn inverse_inverts() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inverse(a)), 1, "{a}");
        }
    }
}
