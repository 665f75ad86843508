//! The `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` values: AES-256-GCM with the
//! nonce size sops chose (32 bytes), the value's path as additional data.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// AES-256-GCM with sops' 32-byte nonces.
type SopsGcm = AesGcm<Aes256, U32>;

/// A decrypted value, typed as its `type:` field says.
#[derive(Debug, Clone, PartialEq)]
pub enum Plain {
    /// `type:str`.
    Str(String),
    /// `type:int`.
    Int(i64),
    /// `type:float`.
    Float(f64),
    /// `type:bool`.
    Bool(bool),
    /// `type:time`, in Go's RFC 3339 text form.
    Time(String),
    /// `type:bytes` (binary files).
    Bytes(Vec<u8>),
    /// `type:comment`.
    Comment(String),
}

impl Plain {
    /// The bytes sops feeds into the MAC for this value (none for comments).
    pub(crate) fn mac_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Plain::Str(s) | Plain::Time(s) => Some(s.as_bytes().to_vec()),
            Plain::Int(i) => Some(i.to_string().into_bytes()),
            Plain::Float(f) => Some(format_float_plain(*f).into_bytes()),
            Plain::Bool(true) => Some(b"True".to_vec()),
            Plain::Bool(false) => Some(b"False".to_vec()),
            Plain::Bytes(b) => Some(b.clone()),
            Plain::Comment(_) => None,
        }
    }
}

/// A float the way Go's `strconv.FormatFloat(f, 'f', -1, 64)` prints it:
/// the shortest digits that read back, never an exponent.
pub(crate) fn format_float_plain(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{f}")
    }
}

/// True for a string in sops' encrypted-value syntax.
pub(crate) fn is_encrypted(value: &str) -> bool {
    value.starts_with("ENC[AES256_GCM,data:")
}

/// Why a value does not decrypt (the caller adds file and path).
pub(crate) fn decrypt(value: &str, key: &[u8], additional_data: &str) -> Result<Plain, String> {
    if value.is_empty() {
        // sops leaves empty strings as they are.
        return Ok(Plain::Str(String::new()));
    }
    let fields = parse(value).ok_or_else(|| "not in sops' ENC[AES256_GCM,…] format".to_string())?;
    let decode = |name: &str, text: &str| {
        STANDARD
            .decode(text)
            .map_err(|e| format!("{name} is not valid base64: {e}"))
    };
    let mut data = decode("data", fields.data)?;
    let iv = decode("iv", fields.iv)?;
    let tag = decode("tag", fields.tag)?;
    if iv.len() != 32 {
        return Err(format!("iv of {} bytes (sops writes 32)", iv.len()));
    }
    if key.len() != 32 {
        return Err(format!("data key of {} bytes (expected 32)", key.len()));
    }
    data.extend_from_slice(&tag);
    let cipher = SopsGcm::new(GenericArray::from_slice(key));
    let nonce: &Nonce<U32> = GenericArray::from_slice(&iv);
    let plain = cipher
        .decrypt(
            nonce,
            Payload {
                msg: &data,
                aad: additional_data.as_bytes(),
            },
        )
        .map_err(|_| "authentication failed (wrong data key or modified value)".to_string())?;
    typed(plain, fields.datatype)
}

/// The plaintext bytes as the value type sops recorded.
fn typed(plain: Vec<u8>, datatype: &str) -> Result<Plain, String> {
    if datatype == "bytes" {
        return Ok(Plain::Bytes(plain));
    }
    let text = match String::from_utf8(plain) {
        Ok(text) => text,
        // A binary file is one string of arbitrary bytes.
        Err(e) if datatype == "str" => return Ok(Plain::Bytes(e.into_bytes())),
        Err(_) => return Err(format!("{datatype} value is not UTF-8")),
    };
    // The text is secret: the error names the type only.
    let bad = |_| format!("the decrypted value is not a valid {datatype}");
    Ok(match datatype {
        "str" => Plain::Str(text),
        "comment" => Plain::Comment(text),
        "time" => Plain::Time(text),
        "int" => Plain::Int(text.parse().map_err(|_| bad(()))?),
        "float" => Plain::Float(text.parse().map_err(|_| bad(()))?),
        "bool" => Plain::Bool(parse_go_bool(&text).ok_or_else(|| bad(()))?),
        other => return Err(format!("value type {other:?} is not supported yet")),
    })
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The four fields of an encrypted value.
struct Fields<'a> {
    data: &'a str,
    iv: &'a str,
    tag: &'a str,
    datatype: &'a str,
}

fn parse(value: &str) -> Option<Fields<'_>> {
    let inner = value.strip_prefix("ENC[AES256_GCM,")?.strip_suffix(']')?;
    let data = inner.strip_prefix("data:")?;
    let (data, rest) = data.split_once(",iv:")?;
    let (iv, rest) = rest.split_once(",tag:")?;
    let (tag, datatype) = rest.split_once(",type:")?;
    Some(Fields {
        data,
        iv,
        tag,
        datatype,
    })
}
